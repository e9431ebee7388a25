"""The installed `fpx-arena` console script, run as a user runs it (not `python -m`, which puts the
working folder on the import path by itself): the documented custom-agent command works from
the repository root, and the working folder never shadows an installed package."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = shutil.which("fpx-arena")
pytestmark = pytest.mark.skipif(SCRIPT is None, reason="the fpx-arena console script is not installed")


def _env():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return env


def test_documented_custom_agent_command_runs_from_the_repository_root():
    doc = (ROOT / "docs" / "agents.md").read_text()
    assert "fpx-arena play fighter -a p0=docs.examples.my_agent:KeepAway -a p1=fighter/aggressive" in doc
    out = subprocess.run([SCRIPT, "play", "fighter", "-a", "p0=docs.examples.my_agent:KeepAway", "-a",
                          "p1=fighter/aggressive", "--clock", "profile", "--latency", "p0=50", "--latency", "p1=50",
                          "--seed", "2"], capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    assert "docs.examples.my_agent:KeepAway" in out.stdout and "winner" in out.stdout


def test_the_working_folder_comes_last_on_the_import_path(tmp_path):
    # a folder named like an installed package (the repository's bare kernels/ beside Hugging
    # Face's `kernels`, which transformers imports) must not shadow it: the working folder is
    # appended to the import path, never prepended
    pytest.importorskip("kernels")
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels" / "__init__.py").write_text("raise ImportError('the working folder shadowed kernels')\n")
    (tmp_path / "myagents.py").write_text(
        "import kernels\n\nclass Still:\n    def reset(self, *a, **k):\n        pass\n\n"
        "    def act(self, observation, info=None):\n        return 0\n")
    out = subprocess.run([SCRIPT, "play", "fighter", "-a", "p0=myagents:Still", "--env", "round_ticks=60"],
                         capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    assert "myagents:Still" in out.stdout


def test_play_help_suggests_only_settings_the_games_accept():
    from fpx_arena import games

    out = subprocess.run([SCRIPT, "play", "--help"], capture_output=True, text=True, env=_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "round_seconds" not in text and "docs/games.md" in text
    # the settings the help sends readers to (docs/games.md: `name` (default)) are accepted
    paragraphs = (ROOT / "docs/games.md").read_text().split("\n\n")
    settings = " ".join(p for p in paragraphs if "Keyword arguments" in p)
    shown = set(re.findall(r"`(\w+)` \((\d+)[ )]", settings))
    assert {"round_ticks", "day_ticks"} <= {key for key, _ in shown}, shown
    for key, value in shown:
        accepted = []
        for name in games.names():
            try:
                games.make(name, **{key: int(value)})
                accepted.append(name)
            except Exception:
                pass
        assert accepted, f"no game accepts --env {key}={value}"


def test_eval_writes_under_runs_never_over_an_earlier_result(tmp_path, monkeypatch):
    from fpx_arena.commands.eval import default_out

    monkeypatch.chdir(tmp_path)
    first = default_out("arena-tiny")
    assert Path(first).parent == Path("runs") and Path(first).name.startswith("eval-arena-tiny-")
    Path("runs").mkdir()
    Path(first).write_text("{}")
    second = default_out("arena-tiny")
    assert second != first and not Path(second).exists()
    assert "bench" not in first and "bench" not in second


def test_play_says_what_a_draw_means_beside_leaning_rewards():
    # stopped before any round ended: no winner, while the per-tick rewards lean one way
    out = subprocess.run([SCRIPT, "play", "fighter", "-a", "p0=fighter/aggressive", "-a", "p1=fighter/reactive",
                          "--max-ticks", "300", "--seed", "2"], capture_output=True, text=True, env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert "winner: draw" not in first
    assert re.search(r"winner: none \(rounds won 0-0\); the per-tick reward leans to p[01] \([+]\d\.\d\d\) but does "
                     r"not decide the match", first), first
