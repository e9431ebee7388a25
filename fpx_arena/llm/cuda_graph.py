"""Greedy decode steps replayed from a captured CUDA graph.

At batch 1 a decode step of a small model is a few hundred tiny kernels; launching them from
Python costs more than running them. A graph captured once replays the whole step with one
launch. Capture needs static shapes, so the captured step writes its key/value at a slot given
as a tensor and attends over the whole cache under a mask (the eager path instead slices the
cache to its current length). The cache's capacity is fixed for the graph's lifetime.
"""
from __future__ import annotations

import torch

from .model import KVCache, Transformer


def static_step(model: Transformer, cache: KVCache, token: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
    """One batch-1 decode step with static shapes: token [1, 1] written at cache slot `slot`
    ([1], a tensor), attending over slots 0..slot of the full-capacity cache. Returns logits
    [vocab]. Does not touch cache.length (the caller keeps it). Runs on any device."""
    slots = torch.arange(cache.capacity, device=slot.device)
    mask = (slots <= slot)[None, :]  # [1 query, capacity]
    return model._forward(token, slot, cache, slot, mask)[0, -1]


class GraphDecoder:
    """decoder(token) == model.decode(token, cache)[0] for batch-1 caches, one graph launch."""

    def __init__(self, model: Transformer, cache: KVCache, warmup: int = 3, compile: bool = False):
        if model.device.type != "cuda":
            raise ValueError("CUDA graphs need the model on a CUDA device")
        self.model, self.cache = model, cache
        # torch.compile fuses the step's many small elementwise kernels; the graph then
        # replays the compiled kernels (compiled during the warm-up, outside the capture)
        self.step_fn = torch.compile(static_step, dynamic=False) if compile else static_step
        dev = model.device
        self.token = torch.zeros(1, 1, dtype=torch.long, device=dev)
        self.slot = torch.zeros(1, dtype=torch.long, device=dev)
        if cache.length >= cache.capacity:
            raise ValueError(f"the cache is full ({cache.capacity} positions): reserve more before capturing")
        # warm-up and capture write one key/value at the first free slot, which the first real
        # step overwrites (slot 0 here would clobber the prompt's first position)
        self.slot.fill_(cache.length)
        stream = torch.cuda.Stream(dev)
        stream.wait_stream(torch.cuda.current_stream(dev))
        saved = cache.length
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(warmup):  # allocator and library warm-up outside the capture
                self._step()
        torch.cuda.current_stream(dev).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.inference_mode():
            self.logits = self._step()
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
