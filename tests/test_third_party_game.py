"""A game from another distribution (tests/fixtures/coin_game), installed with pip and found
through the entry-point group ``fpx_arena.games`` only, plays everywhere a built-in game does:
`fpx-arena games` and `play`, a replay that re-simulates, a headless render with its own
drawer, an LLM agent's prompt (`fpx-arena prompt`), a tournament spec and a person's keys."""
from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fpx_arena import agents, games, replay
from fpx_arena.agents.keyboard import KEYBOARD
from fpx_arena.errors import SpecError
from fpx_arena.tournaments.runner import run_tournament
from fpx_arena.tournaments.spec import load_spec
from fpx_arena.tournaments.store import Store
from synthetic_checkpoints import build_hf_checkpoint

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "coin_game"
LAMP_ON = (255, 214, 10)  # the fixture's drawer paints the lit lamp in this colour


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The fixture installed by pip into a folder of its own, put on sys.path (and PYTHONPATH for
    the CLI): its entry point is then visible to importlib.metadata like any installed package."""
    work = tmp_path_factory.mktemp("coin")
    src, target = work / "src", work / "site"
    shutil.copytree(FIXTURE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(target), str(src)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    games.unregister("coin")
    for name in [m for m in sys.modules if m == "coin_game" or m.startswith("coin_game.")]:
        del sys.modules[name]


def cli(site, *args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
               SDL_VIDEODRIVER="dummy", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "fpx_arena", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_the_game_is_found_through_its_entry_point_only(site):
    assert "coin" not in games.GAMES  # not a built-in: nothing in fpx-arena names it
    assert "coin" in {ep.name for ep in entry_points(group=games.ENTRY_POINT_GROUP)}
    assert "coin" in games.names()
    game = games.get("coin")
    assert isinstance(game, games.Game) and game.name == "coin" and game.bot_specs() == ["coin/eager", "coin/reflex"]
    env = games.make("coin", ticks=30)
    assert games.of_env(env) is game and games.name_of(env) == "coin"
    assert "coin/reflex" in agents.builtin_specs()
    with pytest.raises(SpecError, match="unknown coin bot 'slow'; known: eager, reflex"):
        agents.make("coin/slow")


def test_fpx_arena_games_lists_it(site):
    done = cli(site, "games")
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("coin"))
    assert "players a, b; 20 Hz; actions: wait, grab; bots: coin/eager, coin/reflex" in line


def test_play_record_replay_and_render(site, tmp_path):
    path = tmp_path / "coin.replay"
    done = cli(site, "play", "coin", "-a", "a=coin/reflex", "-a", "b=coin/eager", "--clock", "profile",
               "--latency", "a=0", "--latency", "b=120", "--seed", "4", "--record", str(path), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout[: done.stdout.rindex("}") + 1])
    assert result["game"] == "coin" and result["ticks"] == 200 and result["winner"] == "a"
    data = replay.load(path)
    assert data["game"] == "coin"  # by its registered name, not by module path
    assert replay.resimulate(data)["matches"]

    frames = tmp_path / "frames"
    done = cli(site, "render", str(path), "--out", str(frames) + "/", "--fps", "4", "--quiet")
    assert done.returncode == 0, done.stderr
    pngs = sorted(frames.glob("frame_*.png"))
    assert len(pngs) >= 40
    lit = [np.asarray(Image.open(p).convert("RGB")) for p in pngs]
    share = [float((img == LAMP_ON).all(axis=2).mean()) for img in lit]
    assert max(share) > 0.005 and min(share) == 0.0  # the drawer's lamp, on in some frames and off in others


def test_an_llm_agent_prompts_it(site, tmp_path):
    pytest.importorskip("transformers")
    models = tmp_path / "models"
    build_hf_checkpoint(str(models / "tiny-llama"), arch="llama", seed=3)
    done = cli(site, "prompt", "tiny-llama", "--game", "coin", "--ticks", "12", "--precision", "fp32",
               "--device", "cpu", env_extra={"FPX_ARENA_MODELS": str(models)})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert games.get("coin").rules in out and "Actions: wait, grab." in out
    assert "State: light " in out and "score you " in out
    chosen = [line for line in out.splitlines() if line.startswith("chosen action:")]
    assert len(chosen) == 1 and chosen[0].split()[2] in ("wait", "grab")


def test_a_tournament_spec_plays_it(site, tmp_path):
    spec = load_spec(text="""
name = "coin-cup"
format = "round-robin"
games_per_pairing = 2
paired = true
seed = 5

[[agents]]
name = "reflex"
spec = "coin/reflex"

[[agents]]
name = "eager"
spec = "coin/eager"

[[agents]]
name = "random"
spec = "random"

[games.coin]
clock = "profile"
tick_hz = 20
env = { ticks = 60 }

[games.coin.latency_ms]
reflex = 100
eager = 0
random = 0
""", base=tmp_path)
    outcome = run_tournament(spec, tmp_path / "run", workers=1, progress=False)
    assert outcome.played == outcome.total == 3 * 2 and not outcome.skipped_agents
    with Store.open(outcome.db_path) as store:
        matches = store.matches()
    assert {m.game for m in matches} == {"coin"} and all(m.ticks == 60 for m in matches)
    reflex = [m for m in matches if "reflex" in (m.agent_a, m.agent_b)]
    assert sum(m.winner == "reflex" for m in reflex) >= 3  # the fast grabber wins most of its matches


def test_a_person_plays_it_with_the_games_keymap(site):
    env = games.make("coin", ticks=10)
    obs, _ = env.reset(seed=1)
    person = agents.make("human")
    person.attach_env(env)
    KEYBOARD.listening = True  # what the viewer's window sets while it feeds the keyboard
    try:
        person.reset("a", env.observation_space("a"), env.action_space("a"), 0)
        assert person.key_help == "J grab"
        assert person.act(obs["a"], {}) == 0  # no key: wait
        KEYBOARD.press("j")
        KEYBOARD.release("j")  # a tap between two decisions still counts
        assert person.act(obs["a"], {}) == 1
        assert person.act(obs["a"], {}) == 0
    finally:
        KEYBOARD.listening = False
        KEYBOARD.clear()
