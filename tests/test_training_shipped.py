"""The shipped policies arena-tiny and arena-small: present, small, loadable by name, equal to
transformers' reading of the same files, trained on the prompts the LLM agent makes today, and
playing legal moves in both games."""
from __future__ import annotations

import json
import os

import pytest
import torch

from fpx_arena import agents, games, run_match
from fpx_arena.llm import load_model, resolve

SHIPPED = ("arena-tiny", "arena-small")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_is_complete_and_small(name):
    path, kind = resolve(name)
    assert kind == "hf" and os.path.basename(path) == name
    files = set(os.listdir(path))
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "MODEL_CARD.md",
            "training.json"} <= files
    assert "checkpoint.pt" not in files
    size = sum(os.path.getsize(os.path.join(path, f)) for f in files)
    assert size <= 25 * 2**20
    cfg = json.load(open(os.path.join(path, "config.json")))
    assert cfg["architectures"] == ["LlamaForCausalLM"]


@pytest.mark.parametrize("name", SHIPPED)
def test_transformers_reads_the_shipped_model_as_we_do(name):
    transformers = pytest.importorskip("transformers")
    path, _ = resolve(name)
    ours = load_model(name, "fp32", "cpu")
    env = games.make("market")
    obs, _ = env.reset(seed=11)
    from fpx_arena.agents.llm import PromptBuilder

    prompt = PromptBuilder(games.get("market"), ours.tokenizer, "t0").build(obs["t0"])
    ids = prompt.ids + prompt.candidates[0]
    hf_tok = transformers.AutoTokenizer.from_pretrained(path)
    assert hf_tok(prompt.text, add_special_tokens=True).input_ids == prompt.ids
    hf = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0]
    got = ours.logits([ids])[0]
    assert float((got - ref).norm() / ref.norm()) < 1e-4


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_was_trained_on_todays_prompts(name):
    """The agent's prompt prefix for each game and seat is the one in the training data: a
    change of the prompt format must come with retrained models."""
    from fpx_arena.agents.llm import PromptBuilder

    path, _ = resolve(name)
    trained = json.load(open(os.path.join(path, "training.json")))["prompt_prefixes"]
    tok = load_model(name, "fp32", "cpu").tokenizer
    for key, text in trained.items():
        game, player = key.split("/")
        assert PromptBuilder(games.get(game), tok, player).prefix_text == text, \
            f"{name}: the {game} prompt changed since training; retrain (see its MODEL_CARD.md)"


def test_arena_tiny_plays_both_games_through_the_scheduler():
    for game, opponent, ticks in (("fighter", "fighter/weak", 120), ("market", "market/noise", 60)):
        env = games.make(game)
        ids = env.possible_agents
        r = run_match(env, {ids[0]: agents.make("llm:arena-tiny@bf16"), ids[1]: agents.make(opponent)},
                      clock="lockstep", seed=2, max_ticks=ticks)
        s = r.stats[ids[0]]
        assert r.ticks == ticks and s.decisions == ticks
        assert s.errors == 0 and s.invalid == 0 and s.abstained == 0
