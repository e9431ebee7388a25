"""The fused decode step and the graph generator's logic, on the CPU under the Triton
interpreter (the same kernels the GPU runs): the fused step gives the eager step's logits and
greedy tokens, writes the same keys and values, and counts its kernels per layer."""
import os

import pytest
import torch

from fpx_arena.llm import load_model
from fpx_arena.llm import fastpath
from fpx_arena.llm.cuda_graph import GraphGenerator, key_span
from synthetic_checkpoints import build_hf_checkpoint

pytest.importorskip("triton")
pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("isolated_fpx_cache")
PROMPT = [1, 7, 9, 30, 44, 5, 12, 80, 3, 99, 150, 17]


@pytest.fixture(scope="module", params=["llama", "qwen2", "qwen3"])
def tiny(request, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp(f"fast-{request.param}"))
    kw = {"head_dim": 32} if request.param == "qwen3" else {}
    build_hf_checkpoint(folder, arch=request.param, seed=11, **kw)
    return folder


@pytest.fixture
def interpret(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def rel(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.mark.parametrize("precision", ["bf16", "fp8", "fpx:0.5"])
def test_fused_decode_step_equals_the_eager_step(tiny, precision, interpret):
    model = load_model(tiny, precision, "cpu")
    assert fastpath.usable(model, model.new_cache(64))
    eager, fast = model.new_cache(64), model.new_cache(64)
    model.prefill(PROMPT, eager)
    model.prefill(PROMPT, fast)
    model.eager_decode = True
    ref = [model.decode(t, eager)[0] for t in (5, 6, 7)]
    model.eager_decode = False
    got = [model.decode(t, fast)[0] for t in (5, 6, 7)]
    for r, g in zip(ref, got):
        # bf16 rounding differs in places (attention weights): near-ties may swap, nothing more
        assert rel(g, r) < 2e-2 and float(r[int(g.argmax())]) >= float(r.max()) - 0.05 * float(r.abs().max())
    n = eager.length
    assert rel(fast.k[:, :, :, :n], eager.k[:, :, :, :n]) < 1e-2
    assert rel(fast.v[:, :, :, :n], eager.v[:, :, :, :n]) < 1e-2


def test_generator_produces_the_greedy_tokens_of_eager_decoding(tiny, interpret):
    model = load_model(tiny, "bf16", "cpu")
    cache = model.new_cache(128)
    model.prefill(PROMPT[:4], cache)
    start = cache.length
    gen = GraphGenerator(model, cache, max_new=6)
    out = gen(PROMPT[4:], 6)
    ref_cache = model.new_cache(128)
    ref = model.generate(PROMPT, 6, cache=ref_cache)  # eager calls of the same fused step
    assert out == ref and cache.length == start + len(PROMPT[4:]) + 5
    # a stop id: the tokens after it are dropped and the cache holds only what came before it
    cache.truncate(start)
    stop = out[2]
    cut = gen(PROMPT[4:], 6, stop_ids=[stop])
    assert cut == out[:out.index(stop) + 1]
    assert cache.length == start + len(PROMPT[4:]) + out.index(stop)
    # the host looks every stop_check tokens and stops there: the steps after the stop id's
    # chunk are not run
    gen.stop_check = 2
    cache.truncate(start)
    before, i = gen.replays, out.index(stop)
    assert gen(PROMPT[4:], 6, stop_ids=[stop]) == out[:i + 1]
    assert gen.replays - before == min(6, (i // 2 + 1) * 2) < 6
    assert cache.length == start + len(PROMPT[4:]) + i
    # a cache of 512 slots: the tail's append attends over the first 256 only (key_span)
    big = model.new_cache(512)
    model.prefill(PROMPT[:4], big)
    assert key_span(big, big.length + 16) == 256 and key_span(big, 300) == 512 and key_span(cache, 200) == 128
    assert GraphGenerator(model, big, max_new=6)(PROMPT[4:], 6) == ref


def test_a_decode_step_launches_at_most_twelve_kernels_per_layer(tiny, interpret, monkeypatch):
    """Every device operation of one fused step counted: aten ops that compute (views and
    allocations launch nothing) and the Triton launches of kernels/fused.py (attention is two)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from fpx_arena.kernels import fused

    free = ("view", "reshape", "alias", "select", "slice", "split", "transpose", "unsqueeze", "squeeze",
            "expand", "as_strided", "detach", "empty", "t.default", "_to_copy", "lift_fresh", "unbind")
    counts = {"aten": 0, "triton": 0}

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = str(func)
            if not any(f in name for f in free):
                counts["aten"] += 1
            return func(*args, **(kwargs or {}))

    for fn, launches in (("add_rmsnorm", 1), ("rope_kv_write", 1), ("silu_mul", 1), ("decode_attention", 2)):
        orig = getattr(fused, fn)

        def wrapped(*a, _orig=orig, _n=launches, **k):
            counts["triton"] += _n
            with _Paused():
                return _orig(*a, **k)
        monkeypatch.setattr(fused, fn, wrapped)

    def one_product(*a, _orig=fastpath.qlinear, **k):  # a product of mixed-format members: one GEMV
        counts["triton"] += 1
        with _Paused():
            return _orig(*a, **k)
    monkeypatch.setattr(fastpath, "qlinear", one_product)

    class _Paused:  # the Triton wrappers' own tensor bookkeeping is not device work
        def __enter__(self):
            self.mode = torch.utils._python_dispatch._pop_mode_temporarily()
            self.mode.__enter__()

        def __exit__(self, *exc):
            self.mode.__exit__(*exc)

    for precision in ("bf16", "fp8", "fpx:0.5"):
        counts.update(aten=0, triton=0)
        model = load_model(tiny, precision, "cpu")
        cache = model.new_cache(64)
        model.prefill(PROMPT, cache)
        tok, pos = torch.tensor([5]), torch.tensor([cache.length])
        with torch.inference_mode(), Count():
            fastpath.decode_step(model, cache, tok, pos)
        # per layer: 2 norms, 4 projections (each one op: a GEMM, or the qlinear op), rope + KV
        # write, attention (2); outside them: embedding, length, final norm, lm_head. An fpx plan
        # whose q/k/v (or gate/up) differ in format runs them as separate products: up to 12
        per_layer = 12 if precision.startswith("fpx") else 10
        assert counts["aten"] + counts["triton"] <= per_layer * model.config.n_layers + 4, (precision, counts)


@pytest.mark.parametrize("precision", ["bf16", "fp8"])
def test_fused_static_append_equals_the_model_forward(tiny, precision, interpret):
    """The fused append of a prompt tail (graph body of tails and constrained scoring): the
    same logits and cache keys as the model's own static forward under the same mask."""
    model = load_model(tiny, precision, "cpu")
    caches = [model.new_cache(64), model.new_cache(64)]
    for c in caches:
        model.prefill(PROMPT[:5], c)
    W, base = 6, 5
    tokens = torch.tensor([PROMPT[5:5 + W]])
    slots = base + torch.arange(W)
    k_slot = torch.arange(64)
    mask = (k_slot < base)[None, :] | ((k_slot >= base) & (k_slot - base <= torch.arange(W)[:, None]))
    with torch.inference_mode():
        ref = model.forward_tokens(tokens, slots, caches[0], slots, mask)[0]
        got = fastpath.forward_static(model, caches[1], tokens, slots, slots, mask).float()
        # over only the first 16 slots (a key span holding every key it sees): the same logits
        spanned = fastpath.forward_static(model, caches[1], tokens, slots, slots, mask[:, :16]).float()
    assert rel(got, ref) < 2e-2
    assert rel(spanned, got) < 1e-3
    assert rel(caches[1].k[:, :, :, :base + W], caches[0].k[:, :, :, :base + W]) < 1e-2
