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


def test_graph_scorer_equals_eager_scoring():
    """Constrained decisions replayed from CUDA graphs give the eager scores, across width
    buckets, a row too wide for any graph (eager fallback) and a cache that reallocates."""
    from fpx_arena.llm.cuda_graph import GraphScorer

    c = ModelConfig(vocab_size=1000, dim=256, n_layers=4, n_heads=8, n_kv_heads=2, head_dim=32,
                    intermediate_size=512, max_position=2048, tie_embeddings=True)
    model = init_random(Transformer(c, device="cuda", dtype=torch.float32).eval(), std=0.1)
    g = torch.Generator().manual_seed(3)
    prefix = torch.randint(0, 1000, (60,), generator=g).tolist()
    graph_cache, eager_cache = model.new_cache(256), model.new_cache(256)
    scorer = GraphScorer(model, graph_cache, max_width=64)
    for cache in (graph_cache, eager_cache):
        model.prefill(prefix, cache)
    for step, tail_len in enumerate((3, 12, 20, 40, 7, 90, 5, 150, 4)):
        tail = torch.randint(0, 1000, (tail_len,), generator=g).tolist()
        cands = [torch.randint(0, 1000, (1 + i % 3,), generator=g).tolist() for i in range(5)]
        for cache in (graph_cache, eager_cache):
            cache.truncate(60)
        with torch.inference_mode():
            got = model.score_continuations(cands, graph_cache, context=tail, runner=scorer)
            want = model.score_continuations(cands, eager_cache, context=tail)
        assert rel_err(got, want) < 1e-4, (step, got, want)
        assert graph_cache.length == eager_cache.length == 60 + tail_len
    assert scorer.replays >= 6 and scorer.fallbacks >= 1          # 90 and 150 tokens: too wide
    assert sorted(scorer.graphs) == [(16, 256), (32, 256), (64, 256)]  # (width, key span)
    # a prompt longer than the cache: reserve() reallocates, the graphs are captured again
    long_tail = torch.randint(0, 1000, (230,), generator=g).tolist()
    with torch.inference_mode():
        model.score_continuations([[1]], graph_cache, context=long_tail, runner=scorer)
        graph_cache.truncate(60)
        got = model.score_continuations([[5, 6]], graph_cache, context=[7, 8], runner=scorer)
        eager_cache.truncate(60)
        want = model.score_continuations([[5, 6]], eager_cache, context=[7, 8])
    assert rel_err(got, want) < 1e-4 and scorer.graphs and graph_cache.capacity > 256


def test_llm_agent_with_graphs_plays_like_the_eager_agent(tmp_path):
    """The same seeded match, graphs on and off: identical actions (fp32 model on the GPU)."""
    from fpx_arena import agents, games, run_match
    from synthetic_checkpoints import build_hf_checkpoint

    folder = str(tmp_path / "tiny")
    build_hf_checkpoint(folder, arch="llama", seed=2)
    actions = []
    for graphs in (1, 0):
        agent = agents.make(f"llm:{folder}@fp32?device=cuda&graphs={graphs}")
        result = run_match(games.make("fighter"), {"p0": agent, "p1": agents.make("fighter/reactive")},
                           clock="lockstep", seed=4, max_ticks=120)
        actions.append(result.trace.actions)
        if graphs:
            assert any(r.replays > 0 for r in agent.runners.values())
    assert actions[0] == actions[1]


def test_free_mode_with_graph_decode_generates_what_eager_decode_does(tmp_path):
    """Free mode: the same replies, token for token, with and without the graphs (the tail's
    append and every step replayed, next token picked on the device, one read-back)."""
    precision = "fp32"
    from fpx_arena import agents, games
    from fpx_arena.precision_apps.quality import observation_set
    from synthetic_checkpoints import build_hf_checkpoint

    folder = str(tmp_path / "tiny")
    build_hf_checkpoint(folder, arch="llama", seed=3)
    observations = [o for o in observation_set(7, 6) if o[0] is games.get("fighter")]
    replies = []
    for graphs in (1, 0):
        agent = agents.make(f"llm:{folder}@{precision}?device=cuda&mode=free&max_tokens=6&graphs={graphs}&game=fighter")
        agent.reset("p0")
        out = []
        for _, who, obs, info in observations:
            agent.act(obs, info)
            out.append(agent.last_reply)
        replies.append(out)
        if graphs:
            assert [k for k, _ in agent.runners] == ["generator"]
    assert replies[0] == replies[1] and any(replies[0])


@pytest.mark.parametrize("precision", ["bf16", "fp8", "nvfp4"])
def test_graph_generator_equals_eager_fused_generation(precision, monkeypatch):
    """GraphGenerator on the GPU: the tokens that eager calls of the same fused step pick
    (model.generate), and the cache length it leaves; captured once, replayed after."""
    from fpx_arena.llm.cuda_graph import GraphGenerator
    from fpx_arena.llm.model import ModelConfig, Transformer, init_random

    cfg = ModelConfig(arch="llama", vocab_size=512, dim=256, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=64,
                      intermediate_size=512, max_position=1024)
    model = init_random(Transformer(cfg, device="cuda"), seed=3, std=0.2)  # peaked logits: no near-ties
    model.use_plan(model.add_plan(precision))
    g = torch.Generator().manual_seed(4)
    prefix, tail = torch.randint(0, 512, (40,), generator=g).tolist(), torch.randint(0, 512, (23,), generator=g).tolist()
    cache = model.new_cache(256)
    model.prefill(prefix, cache)
    gen = GraphGenerator(model, cache, max_new=8)
    for _ in range(2):  # the second call replays what the first captured
        cache.truncate(40)
        out = gen(tail, 8)
    ref_cache = model.new_cache(256)
    model.prefill(prefix, ref_cache)
    want = model.generate(tail, 8, cache=ref_cache, append=True)
    assert out == want and cache.length == 40 + 23 + 7 and len(gen.graphs) == 2
