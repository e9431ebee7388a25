"""The policy pipeline end to end on a small scale: record expert data through the LLM agent's
prompt builder, train a tiny model from scratch, resume exactly, and load the result in our
engine and in transformers."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from fpx_arena import games
from fpx_arena.agents.llm import LLMAgent, PromptBuilder
from fpx_arena.errors import UserError
from fpx_arena.policy import dataset
from fpx_arena.policy.train import TrainArgs, train


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    fighter, market = str(root / "fighter"), str(root / "market")
    dataset.collect("fighter", 3, seed=5, out=fighter, heldout_fraction=0.34, explore=0.1, progress=False)
    dataset.collect("market", 2, seed=5, out=market, heldout_fraction=0.5, progress=False)
    return fighter, market


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dirs):
    out = str(tmp_path_factory.mktemp("model") / "tiny")
    summary = train(TrainArgs(data=list(data_dirs), size="tiny", out=out, steps=40, seed=3, batch_size=16,
                              lr=3e-3, log_every=1, checkpoint_every=20, dtype="fp32", progress=False,
                              max_examples=3000))
    return out, summary


def test_dataset_records_the_agents_prompts_split_by_episode(data_dirs):
    fighter, _ = data_dirs
    meta = dataset.read_meta(fighter)
    train_rows = dataset.read_split(fighter, "train")
    held = dataset.read_split(fighter, "heldout")
    assert meta["train"] == len(train_rows) > 100 and meta["heldout"] == len(held) > 10
    # split by episode: no episode on both sides, and the held-out ones are the meta's
    assert {r["episode"] for r in held} == set(meta["heldout_episodes"])
    assert not {r["episode"] for r in train_rows} & set(meta["heldout_episodes"])
    # deduplicated pairs
    keys = [(r["player"], r["tail"], r["action"]) for r in train_rows]
    assert len(keys) == len(set(keys))
    # every held-out row is exactly what the LLM agent's builder makes of the stored observation
    module = games.get("fighter")
    for r in held[:50]:
        b = PromptBuilder(module, dataset.text_tokenizer(), r["player"])
        p = b.build(dataset.obs_from_json(r["obs"]), {})
        assert p.tail_text == r["tail"] and p.prefix_text == meta["prefixes"][f"fighter/{r['player']}"]
        assert r["action"] in p.legal and r["action_name"] == p.action_names[r["action"]]


def test_dataset_is_reproducible_from_its_seed(tmp_path, data_dirs):
    out = str(tmp_path / "again")
    dataset.collect("market", 2, seed=5, out=out, heldout_fraction=0.5, progress=False)
    for name in ("train.jsonl", "heldout.jsonl"):
        with open(os.path.join(out, name)) as a, open(os.path.join(data_dirs[1], name)) as b:
            assert a.read() == b.read()


def test_dataset_rejects_bad_input(tmp_path):
    with pytest.raises(UserError, match="unknown game 'chess'; installed: fighter, market"):
        dataset.collect("chess", 1, 0, str(tmp_path / "x"), progress=False)
    games.register(games.Game("expertless", games.get("fighter").parallel_env, str, list, "rules"))
    try:
        with pytest.raises(UserError, match="no expert for game 'expertless'; datasets exist for fighter, market"):
            dataset.collect("expertless", 1, 0, str(tmp_path / "x"), progress=False)
    finally:
        games.unregister("expertless")
    assert "expertless" not in games.names()
    with pytest.raises(UserError, match="episodes"):
        dataset.collect("fighter", 0, 0, str(tmp_path / "x"), progress=False)
    with pytest.raises(UserError, match="not a dataset folder"):
        dataset.load_splits([str(tmp_path)])


def test_training_lowers_the_action_loss(trained):
    out, summary = trained
    with open(os.path.join(out, "loss.csv")) as f:
        losses = [float(line.split(",")[1]) for line in f.readlines()[1:]]
    assert len(losses) == 40
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    assert summary["heldout"]["loss"] < losses[0]
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["vocab_size"] == summary["vocab_size"]


def test_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path, data_dirs, trained):
    from safetensors.torch import load_file

    out_b = str(tmp_path / "b")
    common = dict(data=list(data_dirs), size="tiny", steps=40, seed=3, batch_size=16, lr=3e-3, log_every=1,
                  checkpoint_every=20, dtype="fp32", progress=False, max_examples=3000)
    first = train(TrainArgs(out=out_b, stop_after=25, **common))
    assert first == {"stopped_at": 25, "steps": 40}
    train(TrainArgs(out=out_b, resume=True, **common))
    a = load_file(os.path.join(trained[0], "model.safetensors"))
    b = load_file(os.path.join(out_b, "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    with pytest.raises(UserError, match="seed"):
        train(TrainArgs(out=out_b, resume=True, **{**common, "seed": 4}))


def test_trained_folder_loads_in_our_engine_and_in_transformers(trained):
    transformers = pytest.importorskip("transformers")
    from fpx_arena.llm import load_model

    out, _ = trained
    ours = load_model(out, "fp32", "cpu")
    text = "State: gap 42px; you: hp 100 idle<|im_end|>\n<|im_start|>assistant\njab<|im_end|>"
    ids = ours.tokenizer.encode(text)
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    assert hf_tok(text, add_special_tokens=True).input_ids == ids
    assert ours.tokenizer.decode(ids, skip_special=False) == text
    hf = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0]
    got = ours.logits([ids])[0]
    assert float((got - ref).norm() / ref.norm()) < 1e-4
    msgs = [{"role": "system", "content": "rules"}, {"role": "user", "content": "state"}]
    assert hf_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == \
        ours.tokenizer.render_chat(msgs)


def test_the_agent_sees_exactly_the_training_encoding(trained, data_dirs):
    """The token ids training used for a recorded decision are the ids the LLM agent prefills
    and scores for the same observation."""
    from tokenizers import Tokenizer

    out, _ = trained
    held = dataset.read_split(data_dirs[0], "heldout")
    meta = dataset.read_meta(data_dirs[0])
    hf = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    agent = LLMAgent(out, "fp32", game="fighter", device="cpu")
    for r in held[:20]:
        r = dict(r, prefix=meta["prefixes"][f"fighter/{r['player']}"])
        (prompt_ids, reply), = dataset.encode([r], hf)
        agent.reset(r["player"])
        action = agent.act(dataset.obs_from_json(r["obs"]), {})
        p = agent.last_prompt
        assert p.prefix_ids + p.tail_ids == prompt_ids
        assert p.candidates[p.legal.index(r["action"])] == reply
        assert action in p.legal
