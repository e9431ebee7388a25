"""CUDA-only checks of the engine (skipped without a GPU): graph-replayed decode equals eager
decode, which equals the full forward, in fp32."""
import pytest
import torch

from fpx_arena.llm.model import ModelConfig, Transformer, init_random

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def rel_err(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("compile", [False, True])
def test_graph_decode_equals_eager_decode(compile):
    from fpx_arena.llm.cuda_graph import GraphDecoder

    c = ModelConfig(vocab_size=1000, dim=256, n_layers=4, n_heads=8, n_kv_heads=2, head_dim=32,
                    intermediate_size=512, max_position=1024, tie_embeddings=True)
    model = init_random(Transformer(c, device="cuda", dtype=torch.float32).eval(), std=0.1)
    ids = torch.randint(0, 1000, (1, 96), device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    full = model.logits(ids)[0]
    graph_cache, eager_cache = model.new_cache(128), model.new_cache(128)
    model.prefill(ids[0, :40], graph_cache)
    model.prefill(ids[0, :40], eager_cache)
    graph = GraphDecoder(model, graph_cache, compile=compile)
    for t in range(40, 96):
        g = graph(ids[0, t]).clone()
        e = model.decode(int(ids[0, t]), eager_cache)[0]
        assert rel_err(e, full[t]) < 1e-4
        assert rel_err(g, e) < 1e-4, t
    assert graph_cache.length == eager_cache.length == 96
