"""Issue 17, items 1 and 2: files people share (replays, training checkpoints) never run code.
The package's source holds no unpickling, eval or exec; a crafted checkpoint or replay is refused
in one line and whatever it carries is never called."""
import pickle
import re
from pathlib import Path

import pytest
import torch

import fpx_arena
from fpx_arena.errors import UserError

PACKAGE = Path(fpx_arena.__file__).resolve().parent
ROOT = PACKAGE.parent
# the package's source folders (the top-level folders install inside fpx_arena)
SOURCES = [PACKAGE] + [ROOT / d for d in ("agents", "games", "kernels", "tournaments") if (ROOT / d).is_dir()]
FORBIDDEN = [
    (r"weights_only\s*=\s*False", "torch.load that unpickles code"),
    (r"^\s*(import|from)\s+(c?pickle|dill|cloudpickle|marshal|shelve|joblib)\b", "an unpickling module"),
    (r"\b(c?pickle|dill|cloudpickle|marshal|joblib)\.(loads?|Unpickler)\b", "unpickling"),
    (r"allow_pickle\s*=\s*True", "numpy unpickling"),
    (r"(?<![\w.])(eval|exec)\s*\(", "eval/exec"),
    (r"\byaml\.(load|unsafe_load)\s*\(", "yaml's object loader"),
    (r"\bnp\.load\s*\(", "np.load (pickles unless told not to)"),
]


def test_no_unpickling_eval_or_exec_in_the_package_source():
    hits = []
    files = [f for d in SOURCES for f in d.rglob("*.py")]
    assert len(files) > 40  # the walk found the package
    for f in files:
        for lineno, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern, what in FORBIDDEN:
                if re.search(pattern, code):
                    hits.append(f"{f.relative_to(ROOT)}:{lineno}: {what}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_the_grep_finds_what_it_looks_for():
    bad = ["state = torch.load(p, weights_only=False)", "import pickle", "x = pickle.loads(b)",
           "eval(text)", "exec(code)", "np.load(p, allow_pickle=True)"]
    for line in bad:
        assert any(re.search(p, line) for p, _ in FORBIDDEN), line
    for line in ["model.eval()", "self.evaluate(x)", "def eval_loss(x):", "torch.load(p, weights_only=True)"]:
        assert not any(re.search(p, line) for p, _ in FORBIDDEN), line


# --- item 2: train --resume --------------------------------------------------------------------
class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # what a crafted checkpoint.pt carries: a call made on unpickling
        return (Path.touch, (Path(self.marker),))


def test_a_crafted_training_checkpoint_is_refused_and_runs_nothing(tmp_path):
    from fpx_arena.policy.train import load_checkpoint

    marker = tmp_path / "PWNED"
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": {}, "step": 1, "evil": _Payload(str(marker))}, path)
    with pytest.raises(UserError) as e:
        load_checkpoint(str(path))
    assert "\n" not in str(e.value) and "can read safely" in str(e.value)
    assert not marker.exists()
    # the same payload as a plain pickle file
    path.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(UserError):
        load_checkpoint(str(path))
    assert not marker.exists()


def test_a_checkpoint_of_plain_data_loads_and_its_fields_are_checked(tmp_path):
    from fpx_arena.policy.train import load_checkpoint

    lin = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(lin.parameters(), lr=1e-3, betas=(0.9, 0.95))
    lin(torch.ones(1, 3)).sum().backward()
    opt.step()
    good = {"model": lin.state_dict(), "optimizer": opt.state_dict(), "step": 3, "log": [{"step": 1, "loss": 2.0}],
            "elapsed_s": 1.5, "tokenizer": "{}", "fingerprint": "abc", "args": {"size": "tiny"}}
    torch.save(good, tmp_path / "ok.pt")
    state = load_checkpoint(str(tmp_path / "ok.pt"))
    assert state["step"] == 3 and torch.equal(state["model"]["weight"], lin.weight)
    opt.load_state_dict(state["optimizer"])  # AdamW state survives the restricted loader
    torch.save({**good, "step": "3"}, tmp_path / "bad.pt")
    with pytest.raises(UserError, match="'step'"):
        load_checkpoint(str(tmp_path / "bad.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="can read safely"):
        load_checkpoint(str(tmp_path / "junk.pt"))
