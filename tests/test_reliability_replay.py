"""Issue 17, items 1 and 11: a replay is data. It names a registered game only (refused in one
line before anything is imported or called), and it is verified before anyone sees it: a
checksum over the recorded stream, the game's state digests along the way, the final digest
(never optional) and the recorded result, all against a re-simulation."""
import gzip
import json
import random
import sys

import pytest

from fpx_arena import agents, games, replay, run_match
from fpx_arena.cli import main
from fpx_arena.errors import ReplayError


def record(tmp_path, game="fighter", seed=4, name=None, **kw):
    env = games.make(game, **kw)
    players = {a: agents.make(f"{game}/reactive" if game == "fighter" else "random") for a in env.possible_agents}
    path = tmp_path / (name or f"{game}.replay")
    result = run_match(env, players, clock="profile", latency={a: 30.0 * i for i, a in enumerate(env.possible_agents)},
                       seed=seed, record=path, game=game, env_kwargs=kw)
    return path, result


def read(path) -> dict:
    with gzip.open(path, "rt") as f:
        return json.load(f)


def write(path, data, *, reseal=False):
    """Write `data` as a replay; reseal=True recomputes the stream checksum, as a careful
    tamperer would, so that the deeper checks must catch the edit."""
    if reseal:
        data["check"]["stream"] = replay._stream_hash(data)
    with gzip.open(path, "wt") as f:
        json.dump(data, f)
    return path


def refused(path, *needles):
    with pytest.raises(ReplayError) as e:
        replay.load(path)
    msg = str(e.value)
    assert "\n" not in msg, msg
    for n in needles:
        assert n in msg, msg
    return msg


@pytest.fixture(scope="module")
def fighter(tmp_path_factory):
    return record(tmp_path_factory.mktemp("fighter"))


# --- item 1: a replay never imports or calls what it names -------------------------------------
@pytest.mark.parametrize("reseal", [False, True])
def test_a_replay_naming_module_attr_runs_nothing(fighter, tmp_path, monkeypatch, reseal):
    marker = tmp_path / "PWNED"
    (tmp_path / "evilgame.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
        "def parallel_env(**kw):\n    pathlib.Path(kw['cmd']).touch()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for game in ("evilgame:parallel_env", "subprocess:getoutput", "evilgame"):
        data = read(fighter[0])
        data["game"], data["env_kwargs"] = game, {"cmd": str(marker)}
        path = write(tmp_path / "evil.replay", data, reseal=reseal)
        refused(path, "not a registered game")
        with pytest.raises(ReplayError, match="not a registered game"):
            replay.make_env(data)
        assert not marker.exists() and "evilgame" not in sys.modules
    # the commands that open replays say it in one line, exit 2
    out = tmp_path / "x.gif"
    assert main(["render", str(path), "--out", str(out)]) == 2
    assert not marker.exists() and not out.exists()


def test_a_version_1_replay_is_refused_naming_its_version(fighter, tmp_path):
    data = read(fighter[0])
    data["version"] = 1
    del data["check"]
    refused(write(tmp_path / "v1.replay", data), "version 1", "record the match again")


def test_todays_replays_load_and_resimulate(fighter, tmp_path):
    path, result = fighter
    data = replay.load(path)
    assert data["version"] == replay.VERSION and data["actions"] == result.trace.actions
    out = replay.resimulate(path)
    assert out == {"ticks": result.ticks, "final_digest": result.final_digest, "matches": True}
    market, res = record(tmp_path, "market", seed=2)
    assert replay.resimulate(market)["final_digest"] == res.final_digest


# --- item 11: verification -----------------------------------------------------------------------
@pytest.mark.parametrize("reseal", [False, True])
def test_the_recorded_result_is_checked(fighter, tmp_path, reseal):
    data = read(fighter[0])
    data["result"]["winner"] = "p1" if data["result"]["winner"] == "p0" else "p0"
    refused(write(tmp_path / "w.replay", data, reseal=reseal), "checksum" if not reseal else "recorded result")
    data = read(fighter[0])
    data["result"]["agents"]["p0"]["reward"] += 1.0
    refused(write(tmp_path / "r.replay", data, reseal=True), "recorded result")


@pytest.mark.parametrize("reseal", [False, True])
def test_a_relabelled_game_is_refused(tmp_path, reseal):
    # a market replay relabelled with the other game's name, and its players renamed to fit
    path, _ = record(tmp_path, "fighter")
    data = read(path)
    data["game"] = "market"
    refused(write(tmp_path / "m.replay", data, reseal=reseal), "checksum" if not reseal else "not players of game")
    path, _ = record(tmp_path, "market", name="mk.replay")
    data = read(path)
    data["game"], data["agents"], data["arrival"] = "fighter", ["p0", "p1"], []
    data["actions"] = [[a % 2 for a in row] for row in data["actions"]]
    refused(write(tmp_path / "f.replay", data, reseal=True), "at tick 0")


def test_a_missing_final_digest_is_refused_not_unverified(fighter, tmp_path):
    for reseal in (False, True):
        data = read(fighter[0])
        data["final_digest"] = None
        refused(write(tmp_path / "n.replay", data, reseal=reseal), "no final state digest", "cannot be verified")
    data = read(fighter[0])
    del data["final_digest"]
    refused(write(tmp_path / "d.replay", data), "lacks 'final_digest'")


def test_every_single_action_tamper_is_detected(fighter, tmp_path):
    data0 = read(fighter[0])
    rng = random.Random(17)
    n_actions = games.make("fighter").action_space("p0").n
    detected_by_state = 0
    for i in range(40):
        data = read(fighter[0])
        t, p = rng.randrange(len(data["actions"])), rng.randrange(2)
        old = data["actions"][t][p]
        data["actions"][t][p] = rng.choice([a for a in range(n_actions) if a != old])
        refused(write(tmp_path / f"t{i}.replay", data), "checksum")
        try:  # resealed: caught when the edit changes the match's states; else the file is a consistent replay
            replay.load(write(tmp_path / f"s{i}.replay", data, reseal=True))
        except ReplayError:
            detected_by_state += 1
    assert detected_by_state >= 1  # a resealed edit that changes the fight is still caught
    assert read(fighter[0]) == data0


def test_a_digest_checkpoint_catches_an_edit_whose_effect_fades(fighter, tmp_path):
    data = read(fighter[0])
    data["check"]["digests"][3][1] = "0" * 40
    refused(write(tmp_path / "c.replay", data, reseal=True), f"at tick {data['check']['digests'][3][0]}")
    data = read(fighter[0])
    del data["check"]["digests"][2]
    refused(write(tmp_path / "g.replay", data, reseal=True), "do not cover")


@pytest.mark.parametrize("field,value,needle", [
    ("seed", "7", "seed must be an integer"), ("tick_hz", 0, "tick_hz"), ("tick_hz", 1e999, "tick_hz"),
    ("agents", ["p0", "p0"], "distinct"), ("actions", {"a": 1}, "actions must be a list"),
    ("env_kwargs", [1], "env_kwargs"), ("result", None, "result is malformed"), ("check", {"every": 0}, "checksums"),
])
def test_malformed_fields_are_one_line(fighter, tmp_path, field, value, needle):
    data = read(fighter[0])
    data[field] = value
    refused(write(tmp_path / "b.replay", data), needle)


def test_out_of_range_actions_and_settings_are_one_line(fighter, tmp_path):
    data = read(fighter[0])
    data["actions"][5][0] = 10 ** 30
    refused(write(tmp_path / "a.replay", data, reseal=True), "not in its action space")
    data = read(fighter[0])
    data["env_kwargs"] = {"no_such_setting": 1}
    refused(write(tmp_path / "k.replay", data, reseal=True), "cannot rebuild game")


def test_recording_an_unregistered_game_or_to_an_unwritable_path_is_one_line(tmp_path):
    from pettingzoo.classic import rps_v2

    env = rps_v2.parallel_env(max_cycles=5)
    with pytest.raises(ReplayError, match="registered game only"):
        run_match(env, {a: agents.make("random") for a in env.possible_agents}, record=tmp_path / "r.replay")
    env = games.make("fighter", round_ticks=120)
    with pytest.raises(ReplayError, match=r"cannot write replay /proc/x.replay") as e:
        run_match(env, {a: agents.make("random") for a in env.possible_agents}, record="/proc/x.replay",
                  game="fighter", env_kwargs={"round_ticks": 120})
    assert "\n" not in str(e.value)
