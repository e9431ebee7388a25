"""Precision switchable at run time: one model holds several plans' weights (the checkpoint
read once, dense tensors shared), switches per call, and each plan computes what a model
loaded at that precision alone computes. q/k/v and gate/up run as fused projections on the
cached path, with the same numbers as the per-layer full forward."""
import pytest
import torch

from fpx_arena.errors import UserError
from fpx_arena.llm import load_model
from fpx_arena.llm.linear import FusedLinear, rows_of, stack_rows
from fpx_arena.kernels import quantize_weight
from fpx_arena.llm.checkpoint import expected_tensors
from fpx_arena.llm.loader import checkpoint_state, shared_model
from fpx_arena.llm.model import ModelConfig, Transformer, init_random
from synthetic_checkpoints import build_hf_checkpoint

pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("isolated_fpx_cache")
IDS = [1, 5, 9, 17, 33, 65, 2, 7, 11, 3, 8, 100, 200, 42, 13, 21]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("tiny-plans"))
    build_hf_checkpoint(folder, arch="qwen2", seed=3)  # qkv bias: the fused bias is split too
    return folder


def rel(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm())


def test_each_plan_computes_what_a_model_of_that_precision_computes(tiny):
    multi = load_model(tiny, "bf16", "cpu")
    names = [multi.add_plan(p) for p in ("fp8", "fp4", "mxfp4")]
    assert names == ["fp8", "nvfp4", "mxfp4"] and multi.plans == ("bf16", "fp8", "nvfp4", "mxfp4")
    assert multi.plan_name == "bf16"  # adding a plan does not switch
    ids = torch.tensor([IDS])
    for name in ("nvfp4", "bf16", "fp8", "mxfp4", "bf16"):
        multi.use_plan(name)
        alone = load_model(tiny, name, "cpu")
        assert multi.plan.precision == name and multi.layers[0].attn.q_proj.fmt == alone.layers[0].attn.q_proj.fmt
        assert torch.equal(multi.logits(ids), alone.logits(ids))
        c1, c2 = multi.new_cache(64), alone.new_cache(64)
        assert torch.equal(multi.prefill(IDS, c1), alone.prefill(IDS, c2))
    multi.use_plan("fp4")  # aliases name the same plan
    assert multi.plan_name == "nvfp4"


def test_the_checkpoint_is_read_once_and_dense_tensors_are_shared(tiny):
    state = checkpoint_state(tiny)
    a = load_model(tiny, "fp8", "cpu")
    b = load_model(tiny, "nvfp4", "cpu")
    a.add_plan("bf16")
    a.add_plan("mxfp4")
    # every tensor read once at most (quantized layers found in the cache are not read at all)
    assert state.reads == len(state.tensors) <= len(expected_tensors(state.src.config))
    assert a.plan_weights("bf16").dense["embed"] is a.plan_weights("fp8").dense["embed"]
    assert a.plan_weights("fp8").linears["lm_head"][0] is a.plan_weights("mxfp4").linears["lm_head"][0]
    assert a.plan_bytes("bf16") > a.plan_bytes("fp8") > a.plan_bytes("mxfp4") > 0
    assert a.weight_bytes("fp8") < a.weight_bytes("bf16")
    assert b.plans == ("nvfp4",)  # each load_model call returns its own model


def test_fused_projections_hold_the_members_rows(tiny):
    m = load_model(tiny, "nvfp4", "cpu")
    attn, mlp = m.layers[1].attn, m.layers[1].mlp
    assert isinstance(attn.fused_qkv, FusedLinear) and attn.fused_qkv.current()
    whole = attn.fused_qkv.qweight.dequantize()
    a = 0
    for member in (attn.q_proj, attn.k_proj, attn.v_proj):
        rows = member.qweight.dequantize()
        assert torch.equal(rows, whole[a:a + member.out_features])
        a += member.out_features
    assert mlp.fused_gate_up.splits == [mlp.gate_proj.out_features, mlp.up_proj.out_features]
    # the cached (fused) path and the per-layer full forward agree
    cache = m.new_cache(64)
    step = m.prefill(IDS, cache, all_logits=True)
    assert rel(step, m.logits([IDS])) < 1e-5
    # a layer replaced afterwards (quality tools do this) takes the per-layer path again
    attn.q_proj.set_weight(torch.randn(attn.q_proj.out_features, attn.q_proj.in_features), attn.q_proj.bias,
                           "bf16", torch.bfloat16, "cpu")
    assert not attn.fused_qkv.current()
    cache = m.new_cache(64)
    assert rel(m.prefill(IDS, cache, all_logits=True), m.logits([IDS])) < 1e-5


def test_rows_and_stacking_of_quantized_weights():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(96, 128, generator=g)
    for fmt in ("fp8", "nvfp4", "mxfp4"):
        qw = quantize_weight(w, fmt)
        parts = [rows_of(qw, 0, 32), rows_of(qw, 32, 96)]
        assert torch.equal(parts[1].dequantize(), qw.dequantize()[32:])
        back = stack_rows(parts)
        assert torch.equal(back.dequantize(), qw.dequantize())
    # weights quantized apart have their own per-tensor scale: they do not stack
    assert stack_rows([quantize_weight(w[:32], "nvfp4"), quantize_weight(w[32:] * 3, "nvfp4")]) is None


def test_plans_on_a_model_built_in_memory():
    cfg = ModelConfig(arch="llama", vocab_size=128, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16,
                      intermediate_size=128, max_position=128)
    model = init_random(Transformer(cfg), seed=1)
    ref = model.logits([IDS[:8]])
    assert model.add_plan("fp32") == "fp32"
    model.add_plan("fp8")
    assert model.plan_name == "fp32" and rel(model.logits([IDS[:8]]), ref) < 1e-6
    model.use_plan("fp8")
    assert 0 < rel(model.logits([IDS[:8]]), ref) < 0.1


def test_unknown_plan_is_one_clear_line(tiny):
    m = load_model(tiny, "bf16", "cpu")
    with pytest.raises(UserError) as e:
        m.use_plan("fp8")
    assert "holds no plan 'fp8'" in str(e.value) and "\n" not in str(e.value)


def test_shared_model_holds_every_plan_asked_and_agents_keep_their_own_caches(tiny):
    m1, p1 = shared_model(tiny, "fp8", "cpu")
    m2, p2 = shared_model(tiny, "fp4", "cpu")
    assert m1 is m2 and (p1, p2) == ("fp8", "nvfp4") and set(m1.plans) >= {"fp8", "nvfp4"}
    c1, c2 = m1.new_cache(64), m1.new_cache(64)
    with m1.using(p1):
        l1 = m1.prefill(IDS, c1)
    with m1.using(p2):
        l2 = m1.prefill(IDS[:5], c2)
    assert c1.length == len(IDS) and c2.length == 5 and not torch.equal(l1, l2)


def test_random_source_plans_and_dropping_a_plan():
    from fpx_arena.llm.plans import RandomSource
    from fpx_arena.llm.model import rope_inv_freq

    cfg = ModelConfig(arch="qwen2", vocab_size=128, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16,
                      intermediate_size=128, max_position=128, qkv_bias=True, tie_embeddings=True)
    with torch.device("meta"):
        model = Transformer(cfg, dtype=torch.bfloat16)
    model.weight_source = RandomSource(cfg, seed=4)
    model.inv_freq = rope_inv_freq(cfg)
    model.use_plan(model.add_plan("bf16"))
    for p in ("fp8", "fpx:0.5"):
        model.add_plan(p)
    fpx = model.plan_weights("fpx:0.5").plan
    assert fpx.count("nvfp4") == 7 and fpx.count("fp8") == 7  # half of the 14 block layers
    ref = model.logits([IDS[:8]])
    model.use_plan("fpx:0.5")
    assert 0 < rel(model.logits([IDS[:8]]), ref) < 0.2
    with pytest.raises(UserError):
        model.drop_plan("fpx:0.5")  # the active one
    before = model.plan_bytes("bf16")
    model.drop_plan("bf16")
    model.drop_plan("fp8")
    assert model.plans == ("fpx:0.5",)
    assert model.plan_weights().dense["embed"] is model.linear_layers()["lm_head"].weight  # tied, shared
    assert before > model.plan_bytes() > 0
