"""Quantized layers are the custom op ``fpx_arena::qlinear``: ``torch.compile`` traces a
quantized model in one graph (fullgraph, no break) and does not recompile when the same
shapes come again or when the weights' values change."""
import pytest
import torch

from fpx_arena.llm import linear
from fpx_arena.llm.model import ModelConfig, Transformer, init_random
from fpx_arena.llm.ops import op_tensors, quantized_linear
from fpx_arena.kernels import qlinear, quantize_weight

torch_dynamo_testing = pytest.importorskip("torch._dynamo.testing")


@pytest.fixture
def torch_backend(monkeypatch):
    monkeypatch.setattr(linear, "QLINEAR_BACKEND", "torch")  # the op, not the CPU shortcut


def small_model(precision):
    cfg = ModelConfig(arch="llama", vocab_size=96, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16,
                      intermediate_size=128, max_position=64)
    model = init_random(Transformer(cfg), seed=2)
    model.use_plan(model.add_plan(precision))
    return model.eval()


@pytest.mark.parametrize("precision", ["fp8", "nvfp4", "mxfp4"])
def test_a_quantized_model_compiles_in_one_graph_without_recompiles(precision, torch_backend):
    torch._dynamo.reset()
    model = small_model(precision)
    counter = torch_dynamo_testing.CompileCounterWithBackend("aot_eager")
    fwd = torch.compile(model.forward, backend=counter, fullgraph=True, dynamic=False)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(3):
            ids = torch.randint(0, 96, (1, 12), generator=g)
            assert torch.allclose(fwd(ids), model.forward(ids), atol=1e-5, rtol=1e-4)
    assert counter.frame_count == 1
    ops = [n for gm in counter.graphs for n in gm.graph.nodes if "fpx_arena.qlinear" in str(n.target)]
    assert len(ops) == 2 * 7  # every block linear of both layers, each one opaque call


def test_the_op_matches_qlinear_and_has_a_shape_only_fake():
    g = torch.Generator().manual_seed(1)
    qw = quantize_weight(torch.randn(48, 64, generator=g), "nvfp4")
    x = torch.randn(3, 5, 64, generator=g)
    bias = torch.randn(48, generator=g)
    y = quantized_linear(x, qw, bias, "torch")
    assert torch.equal(y, qlinear(x, qw, bias, backend="torch"))
    mode = torch._subclasses.fake_tensor.FakeTensorMode()
    tensors = [None if t is None else mode.from_tensor(t) for t in op_tensors(qw)]
    with mode:
        fx = torch.empty(7, 64)
        out = torch.ops.fpx_arena.qlinear(fx, tensors, "nvfp4", 48, 64, 1.0, None, "torch")
        assert tuple(out.shape) == (7, 48)
