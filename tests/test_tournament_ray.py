"""The Ray backend, on a local Ray cluster, gives the same results as the local backend."""
import importlib.util

import pytest

from fpx_arena import replay
from fpx_arena.tournaments.runner import run_tournament
from fpx_arena.tournaments.spec import load_spec
from fpx_arena.tournaments.store import Store

SPEC = """
name = "ray"
games_per_pairing = 2
seed = 8

[[agents]]
name = "reactive"
spec = "fighter/reactive"
latency_ms = 80

[[agents]]
name = "zoner"
spec = "fighter/zoner"
latency_ms = 40

[[agents]]
name = "turtle"
spec = "fighter/turtle"
latency_ms = 120

[games.fighter]
clock = "profile"
env = { round_ticks = 900 }

[games.fighter-lockstep]
game = "fighter"
clock = "lockstep"
env = { round_ticks = 600 }
"""


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="ray is not installed (pip install 'fpx-arena[ray]'); CI installs it")
def test_ray_backend_matches_local_backend(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(SPEC)
    local = run_tournament(load_spec(path), tmp_path / "local", workers=2, progress=False)
    remote = run_tournament(load_spec(path), tmp_path / "ray", backend="ray", workers=2, progress=False)
    assert local.stored == remote.stored == local.total == 12
    with Store.open(tmp_path / "local") as a, Store.open(tmp_path / "ray") as b:
        ours, theirs = a.matches(), b.matches()
    assert [m.outcome() for m in ours] == [m.outcome() for m in theirs]
    assert {m.worker.split("-")[0] for m in theirs} == {"ray"}
    for m in theirs:  # replays came back from the actors intact
        assert replay.load(tmp_path / "ray" / m.replay)["final_digest"] == m.final_digest


def test_ray_missing_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    path = tmp_path / "spec.toml"
    path.write_text(SPEC)
    from fpx_arena.errors import UserError

    with pytest.raises(UserError, match=r"pip install 'fpx-arena\[ray\]'"):
        run_tournament(load_spec(path), tmp_path / "run", backend="ray", progress=False)
