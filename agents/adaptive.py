"""The adaptive agent: one LLM policy over several candidates (models and precisions), a
controller picking the candidate of each decision against the deadline.

Specs:

- ``llm:<model>@adaptive``: the model at bf16, fp8, fpx:0.3, fpx:0.6 and nvfp4, as many as
  memory allows (most accurate first; ``memory_gb=`` sets the budget, default half the free
  device memory, or half the available RAM on a CPU).
- ``adaptive:<spec>,<spec>,...``: candidates named ``<model>@<precision>`` or
  ``llm:<model>@<precision>``, possibly of different models
  (``adaptive:arena-small@fp8,arena-small@nvfp4,arena-tiny@bf16``). Options written after the
  last candidate (``...,arena-tiny@bf16?controller=bandit&threads=1``) are the whole agent's.

Options: ``controller`` (``deadline``, the default, or ``bandit``, ``fixed``; see
controllers.py), that controller's settings (``k``, ``margin_ms``, ``patience_ms``,
``patience_ticks``, ``bank_share``; ``explore``, ``cost``, ``spread``, ``alpha``,
``reward_weight``; ``index``), ``memory_gb``, and the LLM agent's own options (``mode``,
``max_tokens``, ``threads``, ``graphs``, ...), which every candidate gets. From Python,
``latency_prior={key: ms}`` starts candidates from a known latency (a calibration, a
profile's median) instead of trying each once to learn it.

Each decision: the controller picks a candidate from the scheduler's ``DecisionContext`` and
the latencies it has learned; that candidate's LLM agent decides. The next decision's context
carries what the clock charged for this one (``recent_latencies_ms``), which is learned per
candidate and prompt length. The chosen candidate is reported in ``last_timing`` (``plan``,
``candidate``, ``controller_ms`` (the controller's own time; the state text it measures is
the candidate's prompt too, timed as ``prompt_text_ms``), ``predicted_ms``: the trace and
replay keep it), in ``plan`` (viewers) and by ``latency_key()``: the profile clock draws
the latency of the candidate that decided (``latency.CandidateProfiles``). The next
context's ``reward`` tells the controller what the game paid for the decision meanwhile.

Each candidate keeps its own weights and KV cache, resident for the whole match, so switching
costs nothing (on a GPU each has its own CUDA graphs, captured once on first use). Candidates of
one checkpoint read it once where the engine can hold several plans in one model
(``model.add_plan``); otherwise each loads through ``llm.get_model``'s per-process cache.
"""
from __future__ import annotations

import os
import time

from ..errors import SpecError
from .context import DecisionContext
from .controllers import (CandidateInfo, Choice, LatencyModel, make_controller, precision_bits, prompt_bucket,
                          rank_candidates)
from .llm import LLMAgent
from .spec import AgentSpec

DEFAULT_PRECISIONS = ("bf16", "fp8", "fpx:0.3", "fpx:0.6", "nvfp4")
LLM_OPTIONS = ("mode", "max_tokens", "device", "prefix_cache", "fused", "threads", "graphs", "game",
               "system_prompt")


def parse_candidate(text: str) -> tuple[str, str]:
    """(model, precision) of ``<model>@<precision>`` or ``llm:<model>@<precision>``."""
    body = text.strip()
    if body.startswith("llm:"):
        body = body[4:]
    model, at, precision = body.partition("@")
    if not model or (at and not precision) or "?" in body or ":" in model:
        raise SpecError(f"adaptive candidate {text!r}: expected <model>@<precision> or llm:<model>@<precision>")
    precision = precision or "bf16"
    if precision == "adaptive":
        raise SpecError(f"adaptive candidate {text!r}: a candidate needs a fixed precision")
    return model, precision


def _free_bytes(device) -> int:
    import torch

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda":
        return int(torch.cuda.mem_get_info(dev)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def _prior(value, keys: list[str]) -> dict:
    """{candidate key: ms} from {key or llm:key: ms}."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"latency_prior must be a table {{candidate: ms}}, got {value!r}")
    out = {}
    for key in keys:
        ms = value.get(key, value.get("llm:" + key))
        if ms is None:
            continue
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not ms >= 0:
            raise SpecError(f"latency_prior for {key!r} must be a number of ms >= 0, got {ms!r}")
        out[key] = float(ms)
    return out


class AdaptiveAgent:
    """See the module doc. ``candidates``: ``<model>@<precision>`` strings; ``fit_memory``:
    drop candidates (least accurate first) whose weights would not fit ``memory_gb``."""

    def __init__(self, candidates, controller: str = "deadline", memory_gb: float | None = None,
                 fit_memory: bool = False, agreement: dict | None = None, latency_prior=None, **options):
        llm_opts = {k: options.pop(k) for k in list(options) if k in LLM_OPTIONS}
        self.controller_name, self.settings = controller, dict(options)
        if memory_gb is not None and (isinstance(memory_gb, bool) or not isinstance(memory_gb, (int, float))
                                      or not memory_gb > 0):
            raise SpecError(f"memory_gb must be a positive number, got {memory_gb!r}")
        pairs = [parse_candidate(c) for c in candidates]
        if len(pairs) < 1:
            raise SpecError("an adaptive agent needs at least one candidate")
        keys = [f"{m}@{p}" for m, p in pairs]
        if len(set(keys)) != len(keys):
            raise SpecError(f"adaptive candidates repeat: {', '.join(keys)}")
        self.agents = [LLMAgent(model=m, precision=p, **llm_opts) for m, p in pairs]  # checks each spec
        self.infos = [CandidateInfo(key=k, model=m, precision=p, bits=precision_bits(p))
                      for k, (m, p) in zip(keys, pairs)]
        agreement = agreement or {}
        for info in self.infos:
            info.agreement = agreement.get(info.key)
        self.memory_gb, self.fit_memory, self.device = memory_gb, fit_memory, llm_opts.get("device")
        self.prior_ms = _prior(latency_prior, keys)
        # the controller is built here too, so that bad settings fail before any model loads
        self._new_controller()
        self.spec = "adaptive:" + ",".join(keys)
        self.loaded = False
        self.plans: list[str] = []  # each candidate's plan name in its (shared) model
        self.dropped: list[str] = []  # candidates left out for memory
        self.agent_id = None
        self.plan: str | None = None
        self.last_timing: dict = {}
        self.counts: list[int] = [0] * len(self.agents)
        self._last: int | None = None
        # (candidate, Choice, clock, reward and tick at its observation) of the decision not yet charged
        self._pending: tuple | None = None
        self._warm: set = set()  # candidates whose warm-up decision (real clocks) has been charged
        self._between_ms = 0.0

    @property
    def keys(self) -> list[str]:
        return [c.key for c in self.infos]

    def _new_controller(self) -> None:
        self.latency = LatencyModel(len(self.infos))
        for i, info in enumerate(self.infos):
            if info.key in self.prior_ms:
                self.latency.prior(i, self.prior_ms[info.key])
        self.controller = make_controller(self.controller_name, self.infos, self.latency, self.settings)

    # --- loading ------------------------------------------------------------------------
    def load(self) -> None:
        """Load every candidate's weights once (at the first reset), rank them, and drop those
        that do not fit the memory budget where asked to."""
        if self.loaded:
            return
        from ..llm.loader import open_checkpoint, shared_model

        params = {}
        for info in self.infos:
            if info.model not in params:
                params[info.model] = open_checkpoint(info.model).config.n_params()
            info.params = params[info.model]
        rank_candidates(self.infos)
        if self.fit_memory or self.memory_gb is not None:
            budget = self.memory_gb * 2**30 if self.memory_gb is not None else 0.5 * _free_bytes(self.device)
            keep, used = [], 0.0
            for i in sorted(range(len(self.infos)), key=lambda i: self.infos[i].rank):
                need = self.infos[i].params * max(self.infos[i].bits, 4.5) / 8
                if used + need <= budget or not keep:
                    keep.append(i)
                    used += need
                else:
                    self.dropped.append(self.infos[i].key)
            keep.sort()
            self.agents = [self.agents[i] for i in keep]
            self.infos = [self.infos[i] for i in keep]
            rank_candidates(self.infos)
            self.counts = [0] * len(self.agents)
        # one model per checkpoint holding every candidate's plan; each candidate keeps its own
        # KV cache (and, on a GPU, its own CUDA graphs) and runs under its plan
        self.plans = []
        for agent, info in zip(self.agents, self.infos):
            model, plan = shared_model(info.model, info.precision, agent.device)
            agent.model = model
            agent.cache = model.new_cache(1024 if agent.graphs and model.device.type == "cuda" else 512)
            self.plans.append(plan)
        self.loaded = True
        self._new_controller()

    def memory(self) -> dict:
        """Resident weight bytes: {"candidates": {key: bytes}, "total_bytes": each model once,
        "dropped": candidates left out for memory}."""
        self.load()
        per, storages = {}, {}
        for info, agent, plan in zip(self.infos, self.agents, self.plans):
            per[info.key] = agent.model.plan_bytes(plan)
            storages.update(agent.model.plan_weights(plan).tensors())  # shared tensors once
        return {"candidates": per, "total_bytes": sum(storages.values()), "dropped": list(self.dropped)}

    # --- scheduler hooks ----------------------------------------------------------------
    def attach_env(self, env) -> None:
        for agent in self.agents:
            agent.attach_env(env)

    def reset(self, agent_id, observation_space=None, action_space=None, seed=None) -> None:
        self.load()
        self.agent_id = agent_id
        for agent, plan in zip(self.agents, self.plans):
            with agent.model.using(plan):  # the prompt prefix is prefilled under the candidate's plan
                agent.reset(agent_id, observation_space, action_space, seed)
        # a match starts from nothing learned, so a reused agent plays as a fresh one would
        self._new_controller()
        self.counts = [0] * len(self.agents)
        self._last = self._pending = None
        self._warm: set = set()
        self._between_ms = 0.0
        self.plan = None

    def latency_key(self) -> str | None:
        """The candidate that made the last decision (what the profile clock charges)."""
        return None if self._last is None else self.infos[self._last].key

    def charged(self, latency_ms: float, reward: float | None = None, tick: int | None = None) -> None:
        """Learn what the clock charged for the last decision and, given the next observation's
        match reward and tick, what the game paid between the two observations (the outcome,
        per tick). Called by on_charged, or from act with the next context's values."""
        if self._pending is None:
            return
        cand, choice, clock, reward_then, tick_then = self._pending
        self._pending = None
        if clock in ("measured", "wall") and cand not in self._warm:
            # a candidate's first decision in real time pays one-time work (CUDA graph capture,
            # cold caches): learning it would bar the candidate for a cost it never pays again
            self._warm.add(cand)
            return
        # the controller first: it judges the charge against what was predicted before it
        outcome = None
        if reward is not None and tick is not None and reward_then is not None:
            outcome = (reward - reward_then) / max(1, tick - tick_then)  # reward per tick until the next decision
        self.controller.observe(cand, choice, float(latency_ms), outcome)
        self.latency.observe(cand, choice.bucket, float(latency_ms))

    def on_charged(self, latency_ms: float) -> None:
        """The scheduler's word, as soon as it is known, of what the last decision was charged:
        learned between decisions, off the next decision's path. A controller that learns from
        outcomes needs the next observation's reward as well, so it still learns in act."""
        if not self.controller.learns_outcomes:
            t = time.perf_counter()
            self.charged(latency_ms)
            self._between_ms = (time.perf_counter() - t) * 1e3

    def act(self, observation, info=None, context: DecisionContext | None = None):
        # one flat function, not one call per step: after the model's forward the caches are
        # cold, and each extra call here costs the decision microseconds
        t0 = time.perf_counter()
        if self._pending is not None and context is not None and context.recent_latencies_ms:
            self.charged(context.recent_latencies_ms[-1], context.reward, context.tick)
        self._pending = None  # a decision that was never charged teaches nothing
        builder = self.agents[0].builder
        t = time.perf_counter()
        bucket = prompt_bucket(len(builder.describe(observation))) if builder is not None else 0
        text_ms = (time.perf_counter() - t) * 1e3
        urgency = context.urgency if context is not None else None
        if urgency is None and isinstance(info, dict) and isinstance(info.get("urgency"), (int, float)):
            urgency = float(info["urgency"])
        if context is None:  # a plain act(): no clock to answer to, so any candidate is in time
            choice = Choice(1.0, 1e12, 0.0, urgency, bucket)
        else:
            choice = Choice(context.dt_ms, context.time_left_ms, context.overage_left_ms, urgency, bucket)
        i = self.controller.choose(choice)
        predicted = self.controller.predicted
        t1 = time.perf_counter()
        agent = self.agents[i]
        with agent.model.using(self.plans[i]):
            action = agent.act(observation, info)
        self._last = i
        self._pending = ((i, choice, context.clock, context.reward, context.tick) if context is not None
                         else (i, choice, None, None, None))
        self.counts[i] += 1
        key = self.infos[i].key
        self.plan = key
        timing = dict(agent.last_timing)
        # the state text is the candidate's prompt too (PromptBuilder.describe remembers it): its
        # time is the decision's, not the controller's; learned_ms: on_charged's time, spent
        # between the previous decision and this one
        timing.update(plan=key, candidate=key, controller_ms=(t1 - t0) * 1e3 - text_ms, prompt_text_ms=text_ms,
                      learned_ms=self._between_ms,
                      predicted_ms=predicted, total_ms=timing.get("total_ms", 0.0) + (t1 - t0) * 1e3)
        self.last_timing = timing
        self._between_ms = 0.0
        return action

    def __repr__(self):
        return f"AdaptiveAgent({', '.join(self.keys)}, controller={self.controller_name})"


def candidate_keys(spec) -> list[str]:
    """The ``<model>@<precision>`` keys of an adaptive spec's candidates (what per-candidate
    latency profiles are looked up by); [] for any other spec."""
    s = AgentSpec.parse(spec)
    if s.kind == "adaptive":
        return [f"{m}@{p}" for m, p in (parse_candidate(str(x).partition("?")[0]) for x in s.parts)]
    if s.kind == "llm" and s.precision == "adaptive":
        return [f"{s.model}@{p}" for p in DEFAULT_PRECISIONS]
    return []


def make_adaptive(parts=None, model: str | None = None, **options) -> AdaptiveAgent:
    """The spec factory: ``parts`` are the candidate specs of ``adaptive:...`` (the last one's
    options are the agent's); ``model`` alone gives ``llm:<model>@adaptive``."""
    if model is not None:
        options.setdefault("fit_memory", True)
        return AdaptiveAgent([f"{model}@{p}" for p in DEFAULT_PRECISIONS], **options)
    if not parts:
        raise SpecError("expected adaptive:<model>@<precision>,<model>@<precision>[,...]")
    parts = [str(p) for p in parts]
    last, _, query = parts[-1].partition("?")
    for p in parts[:-1]:
        if "?" in p:
            raise SpecError(f"adaptive candidate {p!r}: options go after the last candidate, for the whole agent")
    if query:
        options = {**AgentSpec.parse("x?" + query).kwargs, **options}
    return AdaptiveAgent(parts[:-1] + [last], **options)


__all__ = ["AdaptiveAgent", "make_adaptive", "candidate_keys", "parse_candidate", "DEFAULT_PRECISIONS"]
