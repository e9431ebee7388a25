"""The engine's transformer against Hugging Face transformers on random checkpoints that
transformers itself saves: same logits (fp32, relative error <= 1e-4 over a 64-token prompt)
through the full forward, the cached prefill and token-by-token decode."""
import pytest
import torch

from fpx_arena.llm import load_model
from synthetic_checkpoints import build_hf_checkpoint

transformers = pytest.importorskip("transformers")

LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 32, "rope_theta": 500000.0}
CASES = {
    # Llama 3.1-style rope scaling, GQA, untied, saved in several shards with an index
    "llama3": dict(arch="llama", rope_parameters=LLAMA3_ROPE, max_shard_size="100KB"),
    "qwen2-bias-tied": dict(arch="qwen2"),  # qkv bias, tied embeddings
    "qwen3-qknorm": dict(arch="qwen3"),  # q/k RMSNorm, head_dim != hidden/heads
    "mistral": dict(arch="mistral"),
    "llama-all-bias-mha": dict(arch="llama", attention_bias=True, mlp_bias=True, num_key_value_heads=4,
                               tie_word_embeddings=True),
}


def rel_err(a, b):
    return float((a - b).norm() / b.norm())


@pytest.fixture(scope="module", params=list(CASES))
def pair(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    kw = dict(CASES[request.param])
    hf = build_hf_checkpoint(str(folder), seed=len(request.param), **kw)
    ours = load_model(str(folder), "fp32", "cpu")
    ids = torch.randint(0, 300, (1, 64), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = hf(ids).logits
    return ours, hf, ids, ref


def test_full_forward_matches_transformers(pair):
    ours, _, ids, ref = pair
    assert rel_err(ours.logits(ids), ref) <= 1e-4


def test_prefill_then_decode_match_transformers(pair):
    ours, _, ids, ref = pair
    cache = ours.new_cache(16)  # small on purpose: the cache must grow without losing entries
    all_prefill = ours.prefill(ids[0, :40], cache, all_logits=True)
    assert rel_err(all_prefill, ref[:, :40]) <= 1e-4
    steps = [ours.decode(int(t), cache)[0] for t in ids[0, 40:]]
    assert cache.length == 64
    assert rel_err(torch.stack(steps), ref[0, 40:]) <= 1e-4


def test_token_by_token_decode_from_empty(pair):
    ours, _, ids, ref = pair
    ours.reset()
    steps = [ours.decode(int(t))[0] for t in ids[0]]
    assert rel_err(torch.stack(steps), ref[0]) <= 1e-4


def test_batched_forward_matches_rows(pair):
    ours, hf, _, _ = pair
    ids = torch.randint(0, 300, (3, 20), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = hf(ids).logits
    assert ours.logits(ids).shape == (3, 20, ours.config.vocab_size)
    assert rel_err(ours.logits(ids), ref) <= 1e-4


def test_truncate_keeps_prefix(pair):
    """Prefix caching: truncating back to a prefix and prefilling another tail gives the logits
    of the whole sequence prefilled from scratch."""
    ours, _, ids, ref = pair
    cache = ours.new_cache(64)
    ours.prefill(ids[0, :30], cache)
    ours.prefill(torch.randint(0, 300, (20,)), cache)  # some other tail
    cache.truncate(30)
    out = ours.prefill(ids[0, 30:], cache, all_logits=True)
    assert rel_err(out[0], ref[0, 30:]) <= 1e-4


def test_bf16_close_to_fp32(tmp_path):
    build_hf_checkpoint(str(tmp_path), arch="llama")
    ids = torch.randint(0, 300, (1, 32), generator=torch.Generator().manual_seed(3))
    ref = load_model(str(tmp_path), "fp32", "cpu").logits(ids)
    m = load_model(str(tmp_path), "bf16", "cpu")
    assert m.embed.weight.dtype == torch.bfloat16 and m.layers[0].attn.q_proj.weight.dtype == torch.bfloat16
    assert rel_err(m.logits(ids), ref) < 3e-2


def _logprob_by_full_forward(model, prefix, cand):
    logp = torch.log_softmax(model.logits([prefix + cand])[0], -1)
    return sum(float(logp[len(prefix) - 1 + j, t]) for j, t in enumerate(cand))


def test_batched_candidate_scoring(pair):
    """One packed forward over all candidates = each candidate scored alone = a plain full
    forward over prefix + candidate; and the cache is left as it was."""
    ours, _, ids, _ = pair
    prefix = ids[0, :25].tolist()
    cands = [[5], [7, 9, 11], [7, 9], [100, 3, 3, 3, 3], [42, 17]]
    cache = ours.new_cache(32)
    ours.prefill(prefix, cache)
    together = ours.score_continuations(cands, cache)
    assert cache.length == 25
    for i, c in enumerate(cands):
        alone = ours.score_continuations([c], cache)
        assert abs(float(alone[0]) - float(together[i])) < 1e-4
        assert abs(_logprob_by_full_forward(ours, prefix, c) - float(together[i])) < 1e-3
    # still usable: scoring again after a truncate + new tail
    cache.truncate(20)
    ours.prefill(prefix[20:], cache)
    assert torch.allclose(ours.score_continuations(cands, cache), together, atol=1e-4)
    # the tail and the candidates in one forward: same scores, and the cache keeps the tail
    cache.truncate(20)
    fused = ours.score_continuations(cands, cache, context=prefix[20:])
    assert torch.allclose(fused, together, atol=1e-4)
    assert cache.length == 25
    assert torch.allclose(ours.score_continuations(cands, cache), together, atol=1e-4)
    empty = ours.new_cache(32)
    assert torch.allclose(ours.score_continuations(cands, empty, context=prefix), together, atol=1e-4)


def test_scoring_needs_a_filled_cache(pair):
    ours, _, _, _ = pair
    cache = ours.new_cache(8)
    with pytest.raises(ValueError, match="prefill"):
        ours.score_continuations([[1]], cache)


def test_static_shape_step_equals_decode(pair):
    """The step CUDA graphs capture (slot as a tensor, whole-cache attention under a mask)
    computes what eager decode computes."""
    from fpx_arena.llm.cuda_graph import static_step

    ours, _, ids, ref = pair
    cache = ours.new_cache(80)
    ours.prefill(ids[0, :50], cache)
    with torch.inference_mode():
        for t in range(50, 64):
            out = static_step(ours, cache, ids[:, t:t + 1], torch.tensor([cache.length]))
            cache.length += 1
            assert rel_err(out, ref[0, t]) <= 1e-4


def test_static_shape_scoring_equals_eager_scoring(pair):
    """The constrained decision's forward that GraphScorer captures (padded to a fixed width,
    whole-cache attention under a mask built from groups and positions) scores the candidates
    as the eager forward does and leaves the cache in the same state."""
    from fpx_arena.llm.cuda_graph import static_score

    ours, _, ids, _ = pair
    width = 32

    def padded(cache, span):
        def run(tokens, positions, group):
            n, pad = len(tokens), width - len(tokens)
            last = int(positions[-1])
            return static_score(ours, cache, torch.tensor([list(tokens) + [0] * pad]),
                                torch.cat([positions, torch.arange(last + 1, last + 1 + pad)]),
                                torch.cat([group, torch.full((pad,), -2)]), torch.tensor([cache.length]),
                                span=span)[:n]
        return run

    candidates = [[5, 6, 7], [9], [11, 12], [5, 13]]
    # span 80: attention over the first 80 of the 96 slots (what key_span buckets do)
    for context, span in (([21, 22, 23, 24, 25], None), ([], None), ([21, 22, 23, 24, 25], 80)):
        caches = [ours.new_cache(96), ours.new_cache(96)]
        for c in caches:
            ours.prefill(ids[0, :40], c)
        with torch.inference_mode():
            eager = ours.score_continuations(candidates, caches[0], context=context)
            static = ours.score_continuations(candidates, caches[1], context=context,
                                              runner=padded(caches[1], span))
        assert torch.allclose(static, eager, atol=1e-4), (context, static, eager)
        assert caches[0].length == caches[1].length == 40 + len(context)
        n = caches[0].length
        assert torch.allclose(caches[0].k[:, :, :, :n], caches[1].k[:, :, :, :n], atol=1e-5)
