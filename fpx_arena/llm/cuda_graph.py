"""Greedy decode steps replayed from a captured CUDA graph.

At batch 1 a decode step of a small model is a few hundred tiny kernels; launching them from
Python costs more than running them. A graph captured once replays the whole step with one
launch. Capture needs static shapes, so the captured step writes its key/value at a slot given
as a tensor and attends over the whole cache under a mask (the eager path instead slices the
cache to its current length). The cache's capacity is fixed for the graph's lifetime.
"""
from __future__ import annotations

import torch

from . import fastpath
from .model import KVCache, Transformer


def static_step(model: Transformer, cache: KVCache, token: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
    """One batch-1 decode step with static shapes: token [1, 1] written at cache slot `slot`
    ([1], a tensor), attending over slots 0..slot of the full-capacity cache. Returns logits
    [vocab]. Does not touch cache.length (the caller keeps it). Runs on any device."""
    slots = torch.arange(cache.capacity, device=slot.device)
    mask = (slots <= slot)[None, :]  # [1 query, capacity]
    return model.forward_tokens(token, slot, cache, slot, mask)[0, -1]


def decode_logits(model: Transformer, cache: KVCache, token: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
    """Logits [vocab] of one static-shape decode step: the fused kernels where they run
    (fastpath.py), else the model's own static step."""
    if fastpath.usable(model, cache):
        return fastpath.decode_step(model, cache, token.reshape(1), slot)[0]
    return static_step(model, cache, token.reshape(1, 1), slot)


def capture(fn, device, warmup: int):
    """(graph, fn's output) of ``fn`` captured in a CUDA graph, after ``warmup`` calls on a side
    stream (kernel tuning, compilation and allocator warm-up stay out of the capture)."""
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream), torch.inference_mode():
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode():
        out = fn()
    return graph, out


class GraphDecoder:
    """decoder(token) == model.decode(token, cache)[0] for batch-1 caches, one graph launch."""

    def __init__(self, model: Transformer, cache: KVCache, warmup: int = 3, compile: bool = False):
        if model.device.type != "cuda":
            raise ValueError("CUDA graphs need the model on a CUDA device")
        self.model, self.cache = model, cache
        # torch.compile fuses the step's many small elementwise kernels; the graph then
        # replays the compiled kernels (compiled during the warm-up, outside the capture)
        step = lambda m, c, t, s: decode_logits(m, c, t, s).float()  # noqa: E731
        self.step_fn = torch.compile(static_step, dynamic=False) if compile else step
        dev = model.device
        self.token = torch.zeros(1, 1, dtype=torch.long, device=dev)
        self.slot = torch.zeros(1, dtype=torch.long, device=dev)
        if cache.length >= cache.capacity:
            raise ValueError(f"the cache is full ({cache.capacity} positions): reserve more before capturing")
        # warm-up and capture write one key/value at the first free slot, which the first real
        # step overwrites (slot 0 here would clobber the prompt's first position)
        self.slot.fill_(cache.length)
        saved = cache.length
        self.graph, self.logits = capture(self._step, dev, warmup)
        cache.length = saved

    def _step(self) -> torch.Tensor:
        return self.step_fn(self.model, self.cache, self.token, self.slot)

    def __call__(self, token) -> torch.Tensor:
        cache = self.cache
        if cache.length >= cache.capacity:
            raise ValueError(f"the graph's cache of {cache.capacity} positions is full")
        if isinstance(token, torch.Tensor):
            self.token.copy_(token.reshape(1, 1))
        else:
            self.token.fill_(int(token))
        self.slot.fill_(cache.length)
        self.graph.replay()
        cache.length += 1
        cache.last_logits = self.logits
        return self.logits


def bucket(n: int, smallest: int = 16) -> int:
    """The smallest of smallest, 2 x smallest, 4 x smallest, ... holding n: the static sizes
    graphs are captured for (token widths, key spans)."""
    size = smallest
    while size < n:
        size *= 2
    return size


def key_span(cache: KVCache, needed: int) -> int:
    """The cache slots a static-shape append attends over: the smallest of 256, 512, ... (the
    capacity at most) holding ``needed``. Attention over the whole capacity would cost a short
    prompt several times its keys; one graph per span bucket keeps the shapes static."""
    return min(bucket(needed, 256), cache.capacity)


def static_score(model: Transformer, cache: KVCache, tokens: torch.Tensor, positions: torch.Tensor,
                 group: torch.Tensor, base: torch.Tensor, span: int | None = None) -> torch.Tensor:
    """The forward of ``score_continuations`` with static shapes: W packed tokens [1, W] (a
    prompt's tail, group -1, then candidate tokens, group = candidate; padding has group -2)
    written at cache slots base..base+W-1 (below ``span``, default the capacity), attending
    over slots 0..span-1 under a mask built here from ``group`` and ``positions``. Returns
    logits [W, vocab]."""
    width = tokens.shape[1]
    k_slot = torch.arange(span or cache.capacity, device=tokens.device)
    rel = k_slot - base                                    # the key's index among the W tokens
    new = (rel >= 0) & (rel < width)
    rel = rel.clamp(0, width - 1)
    g_key, p_key = group[rel], positions[rel]
    visible = (g_key[None, :] == -1) | (g_key[None, :] == group[:, None])
    mask = (k_slot < base)[None, :] | (new[None, :] & visible & (p_key[None, :] <= positions[:, None]))
    slots = base + torch.arange(width, device=tokens.device)
    if fastpath.usable(model, cache):
        return fastpath.forward_static(model, cache, tokens, positions, slots, mask).float()
    return model.forward_tokens(tokens, positions, cache, slots, mask)[0]


class GraphScorer:
    """runner(tokens, positions, group) for ``Transformer.score_continuations``: the packed
    forward of a constrained decision replayed from a CUDA graph, one graph per width bucket
    (16, 32, ... ``max_width``) and span of keys (``key_span``), captured on first use. At
    batch 1 a decision of a small model is a few hundred kernels whose launches cost more than
    their work; a replay is one launch.
    Returns None (the caller runs the eager forward) when the row is wider than ``max_width``
    or would not fit the cache; if the cache is reallocated the graphs are captured again."""

    def __init__(self, model: Transformer, cache: KVCache, max_width: int = 256, warmup: int = 2):
        if model.device.type != "cuda":
            raise ValueError("CUDA graphs need the model on a CUDA device")
        self.model, self.cache, self.max_width, self.warmup = model, cache, max_width, warmup
        self.graphs: dict[int, tuple] = {}
        self._cache_ptr = cache.k.data_ptr()
        self._pad_offsets = torch.arange(max_width, device=model.device)
        self.replays = self.fallbacks = 0

    def _capture(self, width: int, span: int) -> tuple:
        dev = self.model.device
        buf = {"tokens": torch.zeros(1, width, dtype=torch.long, device=dev),
               "positions": torch.zeros(width, dtype=torch.long, device=dev),
               "group": torch.full((width,), -2, dtype=torch.long, device=dev),
               "base": torch.full((1,), self.cache.length, dtype=torch.long, device=dev)}
        run = lambda: static_score(self.model, self.cache, span=span, **buf)  # noqa: E731
        # warm-up and capture write keys only past the cache's length, which a real call
        # overwrites before using
        graph, out = capture(run, dev, self.warmup)
        return graph, buf, out

    def __call__(self, tokens: list[int], positions: torch.Tensor, group: torch.Tensor):
        n, cache = len(tokens), self.cache
        width = bucket(n)
        if width > self.max_width or cache.length + width > cache.capacity:
            self.fallbacks += 1
            return None
        if cache.k.data_ptr() != self._cache_ptr:  # reserve() reallocated it: the graphs point at the old one
            self.graphs.clear()
            self._cache_ptr = cache.k.data_ptr()
        key = (width, key_span(cache, cache.length + width))
        if key not in self.graphs:
            self.graphs[key] = self._capture(*key)
        graph, buf, out = self.graphs[key]
        pad = width - n
        buf["tokens"][0].copy_(torch.tensor(list(tokens) + [0] * pad))
        # padding: its own group, positions after the last real one (computed on the device:
        # reading positions[-1] back would stall on the GPU)
        buf["positions"][:n].copy_(positions)
        buf["positions"][n:].copy_(positions[-1] + 1 + self._pad_offsets[:pad])
        buf["group"][:n].copy_(group)
        buf["group"][n:].fill_(-2)
        buf["base"].fill_(cache.length)
        graph.replay()
        self.replays += 1
        return out[:n]


def static_append(model: Transformer, cache: KVCache, tokens: torch.Tensor, n_real: torch.Tensor,
                  base: torch.Tensor, span: int | None = None) -> torch.Tensor:
    """A prompt tail with static shapes: W tokens [1, W] of which the first ``n_real`` ([1])
    are real, written at cache slots base.. (rope positions the same; below ``span``, default
    the capacity), each real token seeing the cache and the real tokens before it. Returns the
    logits [vocab] of the last real one."""
    width = tokens.shape[1]
    offs = torch.arange(width, device=tokens.device)
    positions = base + offs
    k_slot = torch.arange(span or cache.capacity, device=tokens.device)
    rel = k_slot - base
    mask = (k_slot < base)[None, :] | ((rel >= 0) & (rel < n_real))[None, :] & (rel[None, :] <= offs[:, None])
    if fastpath.usable(model, cache):
        return fastpath.forward_static(model, cache, tokens, positions, positions, mask, n_real - 1)[0]
    return model.forward_tokens(tokens, positions, cache, positions, mask, n_real - 1)[0, 0]


class GraphGenerator:
    """Greedy free generation of a decision from CUDA graphs: the prompt tail appended by one
    graph per width bucket (16, 32, ... ``max_width``) and span of keys (``key_span``), then
    each new token by a graph of one decode step (the fused kernels where they run) that
    picks the next token on the device (argmax) and feeds it to the next step. Without stop
    ids nothing is read back until the last step: one read-back per decision. With stop ids
    the host reads the tokens back every ``stop_check`` tokens and stops there once a stop id
    has come (the steps within that chunk run anyway: without conditional graph nodes the
    host cannot skip them unseen), so an answer of a few tokens does not pay for ``max_new``;
    the tokens after the stop id are dropped.

    On a CPU the same buffers and functions run eagerly (that is how tests check the logic).
    ``__call__(tail_ids, max_new, stop_ids)`` returns the generated ids (the stop id included
    when one came) and leaves the cache holding the tail and the ids fed back."""

    def __init__(self, model: Transformer, cache: KVCache, max_new: int = 16, max_width: int = 256,
                 warmup: int = 2, stop_check: int = 4):
        self.model, self.cache, self.max_new, self.max_width, self.warmup = model, cache, max_new, max_width, warmup
        self.stop_check = max(1, int(stop_check))
        self.capture = model.device.type == "cuda"
        dev = model.device
        self.tok = torch.zeros(1, dtype=torch.long, device=dev)
        self.pos = torch.zeros(1, dtype=torch.long, device=dev)
        self.idx = torch.zeros(1, dtype=torch.long, device=dev)
        self.out = torch.zeros(max_new + 1, dtype=torch.long, device=dev)
        self.base = torch.zeros(1, dtype=torch.long, device=dev)
        self.n_real = torch.ones(1, dtype=torch.long, device=dev)
        self.tokens: dict[int, torch.Tensor] = {}
        self.graphs: dict = {}
        self._cache_ptr = cache.k.data_ptr()
        self.replays = 0

    # the two captured bodies: everything on the device, nothing read back
    def _append(self, width: int, span: int) -> None:
        logits = static_append(self.model, self.cache, self.tokens[width], self.n_real, self.base, span)
        nxt = logits.argmax().reshape(1)
        self.out[0:1].copy_(nxt)
        self.tok.copy_(nxt)
        self.pos.copy_(self.base + self.n_real)
        self.idx.fill_(1)

    def _step(self) -> None:
        nxt = decode_logits(self.model, self.cache, self.tok, self.pos).argmax().reshape(1)
        self.out.index_copy_(0, self.idx, nxt)
        self.tok.copy_(nxt)
        self.pos.add_(1)
        self.idx.add_(1)

    def _graph(self, key, fn):
        if not self.capture:
            return fn
        if key not in self.graphs:
            dev = self.model.device
            saved = [t.clone() for t in (self.tok, self.pos, self.idx, self.out)]
            graph, _ = capture(fn, dev, self.warmup)
            for t, v in zip((self.tok, self.pos, self.idx, self.out), saved):
                t.copy_(v)
            self.graphs[key] = graph
        return self.graphs[key].replay

    def fits(self, n_tail: int, max_new: int) -> bool:
        return bucket(n_tail) <= self.max_width and max_new <= self.max_new and \
            self.cache.length + max(bucket(n_tail), n_tail + max_new) <= self.cache.capacity

    @torch.inference_mode()
    def append(self, tail_ids: list[int], max_new: int = 1) -> None:
        """Append the tail (one graph replay) and pick the first new token on the device;
        cache.length is left for the caller (``__call__``) to settle after the read-back."""
        cache, n = self.cache, len(tail_ids)
        if n == 0:
            raise ValueError("generation needs at least one prompt token")
        if not self.fits(n, max_new):
            raise ValueError(f"{n} prompt tokens + {max_new} new do not fit the generator "
                             f"(width {self.max_width}, {self.max_new} new, cache {cache.capacity})")
        if cache.k.data_ptr() != self._cache_ptr:  # reserve() reallocated the cache
            self.graphs.clear()
            self._cache_ptr = cache.k.data_ptr()
        width = bucket(n)
        if width not in self.tokens:
            self.tokens[width] = torch.zeros(1, width, dtype=torch.long, device=self.model.device)
        self.tokens[width][0].copy_(torch.tensor(list(tail_ids) + [0] * (width - n)))
        self.n_real.fill_(n)
        self.base.fill_(cache.length)
        span = key_span(cache, cache.length + width)
        self._graph(("append", width, span), lambda: self._append(width, span))()

    @torch.inference_mode()
    def decode_steps(self, count: int) -> None:
        """``count`` greedy decode steps after ``append`` (graph replays, nothing read back)."""
        step = self._graph("step", self._step)
        for _ in range(count):
            step()

    @torch.inference_mode()
    def __call__(self, tail_ids: list[int], max_new: int, stop_ids=()) -> list[int]:
        cache, n = self.cache, len(tail_ids)
        self.append(tail_ids, max_new)
        stops = set(int(s) for s in stop_ids)
        produced, cut = 1, None                                 # the append picked the first token
        while True:
            k = max_new - produced
            if stops:
                k = min(k, self.stop_check - produced % self.stop_check)
            self.decode_steps(k)
            produced += k
            out = self.out[:produced].tolist()                  # a read-back: the last, or a stop check
            cut = next((i for i, t in enumerate(out) if t in stops), None)
            if cut is not None or produced == max_new:
                break
        self.replays += produced
        kept = out if cut is None else out[:cut + 1]
        cache.length += n + (cut if cut is not None else produced - 1)  # the ids fed back (a stop id is not)
        cache.last_logits = None
        return kept
