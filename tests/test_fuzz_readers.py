"""Issue 17: seeded, bounded fuzzing of the readers of files people share. A few hundred random
mutations each of a replay, a tournament spec, a GGUF header and a config.json go to the real
reader under a per-case time limit; each must load or be refused with one UserError line:
no traceback, no hang. Seeded, so a failure names a case that can be replayed."""
import copy
import gzip
import json
import math
import random
import shutil
import signal
import struct
import traceback
from contextlib import contextmanager

import pytest

from fpx_arena import agents, games, replay, run_match
from fpx_arena.errors import UserError

SEED = 2026
CASE_LIMIT_S = 3.0
JUNK = [None, True, False, 0, -1, 1, 2 ** 31, 2 ** 63, 2 ** 64, -2 ** 63, 10 ** 30, 0.5, -0.0, 1e308, -1e308,
        float("nan"), float("inf"), float("-inf"), "", "x", "fighter", "market", "subprocess:getoutput",
        "os:system", "../../etc/passwd", "\x00", "é" * 50, [], [1], [[1, 2]], {}, {"a": 1}, [None] * 3]


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: float):
    def on_alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def fuzz(cases, read, describe):
    """Feed each case to `read`; collect the tracebacks, hangs and multi-line refusals."""
    problems, refused, accepted = [], 0, 0
    for i, case in enumerate(cases):
        try:
            with time_limit(CASE_LIMIT_S):
                read(case)
            accepted += 1
        except UserError as e:
            refused += 1
            if "\n" in str(e):
                problems.append(f"case {i} ({describe(case)}): a refusal of several lines: {e!r}")
        except Hang as e:
            problems.append(f"case {i} ({describe(case)}): {e}")
        except Exception:
            problems.append(f"case {i} ({describe(case)}): {traceback.format_exc(limit=-3)}")
    return problems, refused, accepted


# --- mutations of JSON-like data ----------------------------------------------------------------
def paths(node, prefix=()):
    """Every (path) into a nested dict/list, leaves and containers."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list) and node:
        for i in {0, len(node) // 2, len(node) - 1}:  # a few positions, not every action of a match
            yield from paths(node[i], prefix + (i,))


def mutate(data, rng: random.Random):
    """One random edit of a nested structure: replace, delete, insert or retype a node."""
    data = copy.deepcopy(data)
    target = rng.choice([p for p in paths(data) if p])
    parent = data
    for key in target[:-1]:
        parent = parent[key]
    key = target[-1]
    op = rng.random()
    if op < 0.6:
        parent[key] = copy.deepcopy(rng.choice(JUNK))
    elif op < 0.75:
        del parent[key]
    elif op < 0.85 and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
        parent[key] = parent[key] + rng.choice([1, -1, 1000, -10 ** 9])
    elif isinstance(parent, dict):
        parent[f"extra{rng.randrange(9)}"] = copy.deepcopy(rng.choice(JUNK))
    else:
        parent.insert(key, copy.deepcopy(rng.choice(JUNK)))
    return data, f"{'/'.join(map(str, target))} op={op:.2f}"


# --- replays --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def replay_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "m.replay"
    env = games.make("market")
    run_match(env, {a: agents.make("random") for a in env.possible_agents}, clock="profile", seed=5,
              latency={a: 20.0 for a in env.possible_agents}, max_ticks=90, record=path, game="market")
    with gzip.open(path, "rt") as f:
        return json.load(f)


def test_fuzz_replays(replay_data, tmp_path):
    rng = random.Random(SEED)
    cases = []
    for i in range(300):
        data, what = mutate(replay_data, rng)
        if rng.random() < 0.5 and isinstance(data.get("check"), dict):
            data["check"]["stream"] = replay._stream_hash(data)  # resealed: the deeper checks must hold
            what += " resealed"
        if json.dumps(data, sort_keys=True) == json.dumps(replay_data, sort_keys=True):
            what += " unchanged"  # the edit put back the value that was there
        raw = gzip.compress(json.dumps(data).encode())
        if i % 10 == 9:  # byte damage of the file itself
            raw = bytearray(raw)
            for _ in range(rng.randrange(1, 4)):
                raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
            raw, what = bytes(raw), what + " bytes flipped"
        cases.append((raw, what))
    path = tmp_path / "case.replay"

    loaded = []

    def read(case):
        path.write_bytes(case[0])
        replay.load(path)
        loaded.append(case)

    problems, refused, accepted = fuzz(cases, read, lambda c: c[1])
    assert not problems, "\n".join(problems[:10])
    # every edit that was not resealed is caught by the checksum; a resealed one loads only where
    # it left the match itself alone (an edit of viewer data: specs, timings, the late mask)
    unsealed = [what for _, what in loaded if "resealed" not in what and "unchanged" not in what]
    assert not unsealed, unsealed[:5]
    assert refused > 200


# --- tournament specs -------------------------------------------------------------------------------
SPEC = """name = "fuzz"
format = "round-robin"
games_per_pairing = 2
seed = 1
concurrency = 1

[[agents]]
name = "reactive"
spec = "fighter/reactive"
latency_ms = 50

[[agents]]
name = "weak"
spec = "fighter/weak"

[games.fighter]
clock = "profile"
tick_hz = 60
latency_ms = { weak = 20 }
network_delay_ms = 5
max_ticks = 100
env = { round_ticks = 300 }

[ratings]
bootstrap = 100
"""
TOML_JUNK = ["inf", "-inf", "nan", "-1", "0", "2000000000", "9223372036854775807", "1e309", '"x"', "[]", "{}",
             "{ a = 1 }", "true", '"../../etc/passwd"', '"subprocess:getoutput"', "1.5", '""', "[1, [2]]"]


def mutate_toml(text: str, rng: random.Random):
    lines = text.splitlines()
    i = rng.randrange(len(lines))
    op = rng.random()
    if op < 0.55 and "=" in lines[i]:
        key = lines[i].split("=", 1)[0]
        lines[i] = f"{key}= {rng.choice(TOML_JUNK)}"
    elif op < 0.7:
        del lines[i]
    elif op < 0.8:
        lines.insert(i, lines[rng.randrange(len(lines))])
    elif op < 0.9:
        lines.insert(i, f"{rng.choice(['seed', 'tick_hz', 'bogus', 'games_per_pairing', 'clock'])} = "
                        f"{rng.choice(TOML_JUNK)}")
    else:
        raw = bytearray("\n".join(lines).encode())
        raw[rng.randrange(len(raw))] = rng.randrange(32, 127)
        return raw.decode("utf-8", errors="replace"), f"byte at line {i} op={op:.2f}"
    return "\n".join(lines), f"line {i} op={op:.2f}"


def test_fuzz_tournament_specs(tmp_path):
    from fpx_arena.tournaments.schedule import latencies
    from fpx_arena.tournaments.spec import load_spec

    rng = random.Random(SEED)
    cases = [mutate_toml(SPEC, rng) for _ in range(300)]

    def read(case):
        spec = load_spec(text=case[0], base=tmp_path)
        latencies(spec)
        assert all(math.isfinite(a.tick_hz or 1) for a in spec.arenas)

    problems, refused, accepted = fuzz(cases, read, lambda c: c[1])
    assert not problems, "\n".join(problems[:10])
    assert refused > 100 and accepted > 20


# --- checkpoints ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("transformers")
    from synthetic_checkpoints import build_hf_checkpoint, write_gguf

    folder = tmp_path_factory.mktemp("tiny")
    hf = build_hf_checkpoint(str(folder / "hf"), arch="llama", seed=2, vocab_size=320, hidden_size=32,
                             intermediate_size=64, num_attention_heads=2, num_key_value_heads=1)
    write_gguf(str(folder / "m.gguf"), hf, str(folder / "hf"), "F16")
    return folder


def test_fuzz_gguf_headers(tiny, tmp_path):
    from fpx_arena.llm.checkpoint import GGUFSource

    from gguf import GGUFReader

    raw = (tiny / "m.gguf").read_bytes()
    header = GGUFReader(str(tiny / "m.gguf")).data_offset  # the damage goes into the header only
    assert 64 < header < len(raw)
    rng = random.Random(SEED)
    cases = []
    extremes = [0, 1, 3, 2 ** 31, 2 ** 32 - 1, 2 ** 63, 2 ** 64 - 1]
    for _ in range(300):
        buf = bytearray(raw)
        op = rng.random()
        if op < 0.4:
            for _ in range(rng.randrange(1, 5)):
                buf[rng.randrange(4, header)] ^= 1 << rng.randrange(8)
            what = "bit flips"
        elif op < 0.85:
            at = rng.randrange(4, header - 8)
            value = rng.choice(extremes)
            struct.pack_into("<Q", buf, at, value)
            what = f"u64 {value} at {at}"
        else:
            cut = rng.randrange(4, header)
            buf = buf[:cut]
            what = f"cut at {cut}"
        cases.append((bytes(buf), what))
    path = tmp_path / "case.gguf"

    def read(case):
        path.write_bytes(case[0])
        src = GGUFSource(str(path))
        src.check()
        src.tokenizer()

    problems, refused, accepted = fuzz(cases, read, lambda c: c[1])
    assert not problems, "\n".join(problems[:10])
    assert refused > 100


def test_fuzz_config_json(tiny, tmp_path):
    from fpx_arena.llm.checkpoint import HFSource

    folder = tmp_path / "hf"
    shutil.copytree(tiny / "hf", folder)
    config = json.loads((folder / "config.json").read_text())
    rng = random.Random(SEED)
    cases = []
    for i in range(300):
        data, what = mutate(config, rng)
        if i % 25 == 0:
            data, what = rng.choice([[data], "config", 5, None]), "not an object"
        cases.append((json.dumps(data), what))

    def read(case):
        (folder / "config.json").write_text(case[0])
        src = HFSource(str(folder))
        src.check()

    problems, refused, accepted = fuzz(cases, read, lambda c: c[1])
    assert not problems, "\n".join(problems[:10])
    assert refused > 50 and accepted > 50


def test_fuzz_plan_files(tmp_path):
    """Precision plan files are shared too (`llm:<model>@plan.json`)."""
    from fpx_arena.llm.precision import load_plan

    names = [f"layers.{i}.attn.{p}" for i in range(2) for p in ("q_proj", "k_proj")] + ["lm_head"]
    model = {"name": "m", "checkpoint_sha256": "ab", "layers_sha256": "cd", "n_linear": len(names)}
    base = {"format": "fpx-arena-plan", "version": 1, "precision": "fpx:0.5", "compute_dtype": "bf16", "model": model,
            "formats": {n: ("nvfp4" if i % 2 else "fp8") for i, n in enumerate(names)}, "counts": {}, "bits": 6.0,
            "eps": {n: 0.01 for n in names}, "calibration": {}}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(base))
    assert load_plan(str(path), names, model_id=model).formats["lm_head"] == "fp8"  # the control loads
    rng = random.Random(SEED)
    cases = [mutate(base, rng) for _ in range(300)]

    def read(case):
        path.write_text(json.dumps(case[0]))
        load_plan(str(path), names, model_id=model)

    problems, refused, accepted = fuzz(cases, read, lambda c: c[1])
    assert not problems, "\n".join(problems[:10])
    assert refused > 50
