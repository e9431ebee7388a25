"""Every ```python block and every `fpx-arena ...` command of README.md and docs/*.md runs here, on
the CPU, in a fresh folder per page (snippets that write files write there).

The blocks of one page run in order in one namespace (a later block may use an earlier one's
names, as a reader would), and a page's commands run in order in one folder (a `render` reads
the replay an earlier `play --record` wrote). Commands run in-process through `fpx_arena.cli.main`.
Where a command would run for minutes, SHRINK gives it the documented flags that make it small;
what needs a GPU, a display, the network or minutes is in SKIP with its reason. Both tables are
keyed by text that must still be on the page: an entry that matches nothing fails the test.
"""
from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from fpx_arena import cli

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
ERROR_LINE = re.compile(r"^fpx-arena [\w-]+: error: ")

# (page, the snippet's first line or the command's start) -> why it does not run here
SKIP: dict[tuple[str, str], str] = {
    ("README.md", "fpx-arena tournament"): "the full default tournament takes minutes on a CPU",
    ("docs/tournaments.md", "fpx-arena tournament"): "the default tournament (and its --clock/--seed variants) "
                                                     "takes minutes; my.toml is a placeholder",
    ("docs/tournaments.md", "fpx-arena report runs/my-"): "usage synopsis ([optional] flags) of a placeholder run",
    ("docs/tournaments.md", "from fpx_arena.tournaments import"): "runs a whole tournament (minutes) with two "
                                                                  "spawned workers",
    ("docs/architecture.md", "fpx-arena play fighter -a p0=... -a p1=..."): "a line of a diagram, not a command",
    ("docs/viewer.md", "fpx-arena watch"): "opens a window (needs a display)",
    ("docs/viewer.md", "fpx-arena play fighter -a p0=human"): "a human at the keyboard in a window",
    ("docs/viewer.md", "fpx-arena play market -a t0=human"): "a human at the keyboard in a window",
    ("docs/viewer.md", "fpx-arena render match.replay --out match.mp4"): "needs imageio-ffmpeg (not a dependency)",
    ("docs/viewer.md", "from fpx_arena.viewer import watch_live"): "opens windows (needs a display)",
    ("docs/models.md", "fpx-arena train"): "minutes on a CPU even at --steps 2 (measured 7 min 58 s of wall time "
                                           "for 8 s of steps, 2-core EPYC); tests/test_training_*.py train small",
}
# (page, the command's start) -> (flags to drop, flags to set): the same command, small
SHRINK: dict[tuple[str, str], tuple[tuple[str, ...], dict[str, str]]] = {
    ("README.md", "fpx-arena play fighter -a p0=llm:arena-small@bf16"): ((), {"--env": "round_ticks=150"}),
    ("docs/viewer.md", "fpx-arena play fighter -a p0=fighter/reactive"): (("--watch",), {}),  # records, no window
    ("docs/viewer.md", "fpx-arena render match.replay --out match.gif"): ((), {"--end": "3", "--fps": "5"}),
    ("docs/viewer.md", "fpx-arena render match.replay --out frames/"): ((), {"--end": "1", "--fps": "2"}),
    ("docs/models.md", "fpx-arena dataset fighter"): ((), {"--episodes": "2", "--workers": "1"}),
    ("docs/models.md", "fpx-arena dataset market"): ((), {"--episodes": "2", "--workers": "1"}),
    ("docs/models.md", "fpx-arena eval arena-small"):  # agreement only: every precision, no matches
        ((), {"--matches": "0", "--agreement-episodes": "1", "--agreement-limit": "16"}),
}
# names a fragment uses without defining them (the page says what they stand for)
PREAMBLE: dict[tuple[str, str], str] = {
    ("docs/games.md", "from fpx_arena.games import Game, Keymap, Setups"):
        "from coin_game import parallel_env, describe, action_names, ReflexBot\n"
        "decide = lambda held, pressed, facing_right: 'grab' if 'b1' in pressed else 'wait'\n",
}


def rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def python_blocks(page: Path) -> list[tuple[int, str]]:
    text = page.read_text(encoding="utf-8")
    return [(line_of(text, m.start()), m.group(2)) for m in FENCE.finditer(text) if m.group(1) == "python"]


def commands(page: Path) -> list[tuple[int, str, str | None]]:
    """(line, command, the error line the page shows it print or None) of every fenced command."""
    text = page.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        if m.group(1) not in ("", "bash", "sh", "console", "shell"):
            continue
        first = line_of(text, m.start()) + 1
        lines = m.group(2).split("\n")
        i = 0
        while i < len(lines):
            start, line = first + i, lines[i].strip().removeprefix("$ ")
            while line.endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line[:-1].rstrip() + " " + lines[i].strip()
            i += 1
            if ERROR_LINE.match(line):
                if out and out[-1][0] >= first:  # the output of the command above it
                    out[-1] = (*out[-1][:2], line)
                continue
            for part in line.split(" && "):  # `a && b`: two commands
                part = re.sub(r"\s+#.*$", "", part).strip()
                if part.startswith("fpx-arena "):
                    out.append((start, part, None))
    return out


def match_key(table: dict, page: str, snippet: str):
    for key in table:
        if key[0] == page and snippet.startswith(key[1]):
            return key
    return None


def shrink(command: str, drop: tuple[str, ...], set_: dict[str, str]) -> list[str]:
    argv = shlex.split(command)[1:]
    out, i = [], 0
    while i < len(argv):
        if argv[i] in drop:
            i += 1
        elif argv[i] in set_ and argv[i] != "--env":
            i += 2  # replaced below
        else:
            out.append(argv[i])
            i += 1
    for flag, value in set_.items():
        out += [flag, value]
    return out


def page_params():
    return [pytest.param(page, id=rel(page)) for page in PAGES
            if python_blocks(page) or commands(page)]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))  # docs.examples.* agents, as from a checkout
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "fixtures" / "coin_game"))
    return tmp_path


@pytest.mark.parametrize("page", page_params())
def test_page_runs(page, in_tmp):
    name, ran = rel(page), []
    namespace = {"__name__": "__doc_snippet__"}
    for line, code in python_blocks(page):
        first = code.strip().splitlines()[0]
        if match_key(SKIP, name, first):
            continue
        key = match_key(PREAMBLE, name, first)
        try:
            exec(compile((PREAMBLE[key] if key else "") + code, f"{name}:{line}", "exec"), namespace)
        except Exception as e:  # noqa: BLE001 - the snippet's own failure, named by its place
            pytest.fail(f"{name}:{line}: python block fails: {type(e).__name__}: {e}")
        ran.append(line)
    for line, command, shown_error in commands(page):
        if match_key(SKIP, name, command):
            continue
        key = match_key(SHRINK, name, command)
        argv = shrink(command, *SHRINK[key]) if key else shlex.split(command)[1:]
        if "--quiet" not in argv and argv[0] in ("dataset", "train", "eval", "render"):
            argv.append("--quiet")
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            rc = cli.main(argv)
        if shown_error is not None:  # the page shows this command failing with one line: check that line
            assert rc == 2 and err.getvalue().strip() == shown_error, (
                f"{name}:{line}: `{command}` should print {shown_error!r}, printed {err.getvalue()!r}")
        else:
            assert rc == 0, f"{name}:{line}: `{' '.join(argv)}` exited {rc}: {err.getvalue()[-600:]}"
            written = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--out", "-o", "--record")]
            missing = [w for w in written if not (in_tmp / w).exists()]
            assert not missing, f"{name}:{line}: `{' '.join(argv)}` did not write {missing}"
        ran.append(line)
    if not ran:
        pytest.skip(f"{name}: every snippet on it is in SKIP")


def test_every_skip_and_shrink_entry_is_still_on_its_page():
    found = set()
    for page in PAGES:
        name = rel(page)
        snippets = [code.strip().splitlines()[0] for _, code in python_blocks(page)]
        snippets += [c for _, c, _ in commands(page)]
        for table in (SKIP, SHRINK, PREAMBLE):
            found |= {k for k in table for s in snippets if k[0] == name and s.startswith(k[1])}
    stale = [k for k in (*SKIP, *SHRINK, *PREAMBLE) if k not in found]
    assert not stale, f"these entries match no snippet any more: {stale}"


def test_the_extractor_joins_continuations_and_keeps_shown_errors(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("```bash\nfpx-arena play x \\\n    --seed 3   # note\nfpx-arena games && fpx-arena agents\n```\n"
                    "```\n$ fpx-arena play y\nfpx-arena play: error: bad y\n```\n", encoding="utf-8")
    assert commands(page) == [(2, "fpx-arena play x --seed 3", None), (4, "fpx-arena games", None),
                              (4, "fpx-arena agents", None), (7, "fpx-arena play y", "fpx-arena play: error: bad y")]
    assert shrink("fpx-arena play a --watch --seed 3", ("--watch",), {"--seed": "1"}) == ["play", "a", "--seed", "1"]
