"""The LLM agent: ``llm:<model>@<precision>[?mode=free&max_tokens=16]``.

Each decision is one chat prompt: a system message that explains the game and lists its
actions (the same for every decision), then a user message with the game's ``describe()`` of
the observation and the legal actions. The rendered prompt is split where the user's text
begins: the fixed prefix is prefilled into the agent's KV cache once, and each decision only
truncates the cache back to it and prefills the changing tail.

Two ways to choose:
- ``constrained`` (default): the reply "<action name><end of turn>" of every legal action is
  scored in one forward against the cached prompt and the most likely one is taken: always
  legal. By default that forward also carries the decision's new prompt tokens (``fused``):
  one model call per decision. On a GPU that call is replayed from a CUDA graph
  (``graphs``, default on: one launch instead of a few hundred; see llm/cuda_graph.py), and
  so is each decode step of ``free`` mode.
- ``free``: greedy generation of up to ``max_tokens`` tokens, parsed into an action name (the
  LLM Colosseum / FPX-bench way). An answer that names no legal action returns None: the
  scheduler applies the late policy and counts the decision as abstained.

``build_prompt`` / ``PromptBuilder`` are the exact prompt of a decision, public so that
training data and calibration text are recorded through the same code.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError, UserError
from ..llm.cuda_graph import GraphDecoder, GraphGenerator, GraphScorer
from ..llm.loader import shared_model
from .base import action_mask

SYSTEM_TEMPLATE = ("{rules}\nEach turn you see the current state. Reply with exactly one action "
                   "name and nothing else. Actions: {actions}.")
USER_TEMPLATE = "State: {state}\nWhich action do you take? Answer with one word from: {legal}."
_SENTINEL = "\ue000STATE\ue000"  # marks where the user's text starts in the rendered template


@dataclass
class Prompt:
    """One decision's prompt: text and token ids, split into the cached prefix and the tail."""
    prefix_text: str
    tail_text: str
    prefix_ids: list[int]
    tail_ids: list[int]
    action_names: list[str]
    legal: list[int]  # legal action ids, in order
    candidates: list[list[int]] = field(default_factory=list)  # reply tokens of each legal action

    @property
    def text(self) -> str:
        return self.prefix_text + self.tail_text

    @property
    def ids(self) -> list[int]:
        return self.prefix_ids + self.tail_ids


# The last observation described, by any builder, as one (key, text) tuple (replaced whole, so
# agents on other threads never read a key with another's text): an adaptive agent's
# controller measures the state text before its candidate builds the prompt from the same text.
_LAST_DESCRIBED: list = [(None, None)]


class PromptBuilder:
    """The prompts of one game for one model's tokenizer and chat template. The prefix text,
    its tokens and each action's reply tokens are computed once."""

    def __init__(self, game, tokenizer, agent: str | None = None, system_prompt: str | None = None):
        self.game, self.tokenizer, self.agent = game, tokenizer, agent  # game: a games.Game
        self.action_names = list(game.action_names(agent))
        self.system_prompt = system_prompt or SYSTEM_TEMPLATE.format(
            rules=game.rules, actions=", ".join(self.action_names))
        rendered = tokenizer.render_chat([{"role": "system", "content": self.system_prompt},
                                          {"role": "user", "content": _SENTINEL}], add_generation_prompt=True)
        if rendered.count(_SENTINEL) != 1:
            raise ValueError("the chat template does not place the user message verbatim")
        self.prefix_text, self.suffix_text = rendered.split(_SENTINEL)
        self.prefix_ids = tokenizer.encode(self.prefix_text, bos=not self.prefix_text.startswith(
            tokenizer.bos_token or "\0"))
        end = tokenizer.end_of_turn_id
        self.reply_ids = [tokenizer.encode(name) + ([end] if end is not None else []) for name in self.action_names]

    def describe(self, observation) -> str:
        """The game's ``describe()`` of the observation for this agent (remembered for the last one)."""
        vec = observation.get("observation") if isinstance(observation, dict) else observation
        key = (self.game.name, self.agent, vec.tobytes()) if isinstance(vec, np.ndarray) else None
        last_key, last_text = _LAST_DESCRIBED[0]
        if key is not None and last_key == key:
            return last_text
        text = self.game.describe(observation, self.agent)
        if key is not None:
            _LAST_DESCRIBED[0] = (key, text)
        return text

    def build(self, observation, info: dict | None = None) -> Prompt:
        mask = action_mask(observation, info)
        legal = [int(i) for i in np.flatnonzero(mask)] if mask is not None else list(range(len(self.action_names)))
        if not legal:
            legal = [0]
        state = self.describe(observation)
        user = USER_TEMPLATE.format(state=state, legal=", ".join(self.action_names[i] for i in legal))
        tail = user + self.suffix_text
        return Prompt(self.prefix_text, tail, self.prefix_ids, self.tokenizer.encode(tail), self.action_names,
                      legal, [self.reply_ids[i] for i in legal])


def build_prompt(game, observation, agent, tokenizer, info: dict | None = None) -> Prompt:
    """The exact prompt the LLM agent uses for `observation` in `game` (a games.Game; see PromptBuilder)."""
    return PromptBuilder(game, tokenizer, agent).build(observation, info)


def parse_action(text: str, names: list[str]) -> int | None:
    """The action a free-text answer names: the whole answer if it is a name, else the first
    name that appears as a word (the longest one where several start at the same place)."""
    t = text.strip().lower()
    clean = re.sub(r"^(action|answer|move)\s*[:=-]\s*", "", t).strip(" \t\n\"'`.*!:;,")
    lowered = [n.lower() for n in names]
    if clean in lowered:
        return lowered.index(clean)
    best = None
    for i, n in enumerate(lowered):
        m = re.search(rf"(?<![a-z0-9_]){re.escape(n)}(?![a-z0-9_])", t)
        if m and (best is None or (m.start(), -len(n)) < (best[0], -len(lowered[best[1]]))):
            best = (m.start(), i)
    return None if best is None else best[1]


# --- one model per (checkpoint, device) per process, holding every plan asked of it ------------
def get_model(model: str, precision: str = "bf16", device=None):
    """The process's shared model of ``model`` on ``device`` with plan ``precision`` resident
    and active (agents that share it run their decisions under ``model.using(plan)``)."""
    shared, plan = shared_model(model, precision, device)
    with shared.lock:
        shared.use_plan(plan)
    return shared


class LLMAgent:
    """An agent that asks a language model (see the module doc). Keyword options come from the
    spec's query string: mode, max_tokens, device, prefix_cache (keep the prompt prefix in the
    KV cache), fused (constrained mode: the state's tokens and the replies in one forward rather
    than a prefill then a scoring pass), graphs (on a GPU, replay the decision's forward or
    each decode step from a CUDA graph; graphs=0 for eager), game, system_prompt, threads (torch's CPU threads, a
    process-wide setting; 1 by default on a CPU, where torch's default of one per core makes
    agents sharing a machine fight for it and run several times slower).

    last_timing: prefill_ms (prompt building and the forward passes over the prompt; with
    fused scoring, the whole decision), decode_ms (the scoring pass, or free generation),
    total_ms."""

    def __init__(self, model: str, precision: str = "bf16", mode: str = "constrained", max_tokens: int = 8,
                 device=None, prefix_cache: bool = True, game: str | None = None,
                 system_prompt: str | None = None, fused: bool = True, threads: int | None = None,
                 graphs: bool = True):
        from ..llm.precision import make_plan
        from ..llm.registry import resolve

        if mode not in ("constrained", "free"):
            raise SpecError(f"mode must be 'constrained' or 'free', got {mode!r}")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise SpecError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise SpecError(f"threads must be a positive integer, got {threads!r}")
        self.threads = threads
        make_plan(precision, [])  # an unknown precision fails here, before any loading
        resolve(model)  # so does an unknown model
        self.model_name, self.precision, self.mode = model, precision, mode
        self.max_tokens, self.device = max_tokens, device
        self.prefix_cache = bool(prefix_cache)
        self.fused = bool(fused)
        self.graphs = bool(graphs)
        self._runners: dict = {}  # CUDA-graph runners of self.cache, by (kind, plan): captured once each
        self.plan_name = None  # the model's plan this agent decides with
        self.system_prompt = system_prompt
        self.game = None
        if game is not None:
            from .. import games

            self.game = games.get(game)
        self.model = None
        self.agent_id = None
        self.builder: PromptBuilder | None = None
        self.cache = None
        self._prefix_len = None
        self.last_timing: dict = {}
        self.last_prompt: Prompt | None = None
        self.last_reply = ""  # free mode: the generated text
        self.last_scores: dict[str, float] = {}  # constrained mode: log-prob of each legal action
        self.unparsed = 0  # free-mode answers that named no legal action

    # --- scheduler hooks --------------------------------------------------------------------
    def attach_env(self, env) -> None:
        from .. import games

        game = games.of_env(env)
        if game is not None and game is not self.game:
            self.game, self.builder = game, None

    def reset(self, agent_id, observation_space=None, action_space=None, seed=None) -> None:
        self.agent_id = agent_id
        if self.model is None:
            self.model, self.plan_name = shared_model(self.model_name, self.precision, self.device)
            with self.model.using(self.plan_name):  # the cache holds this plan's compute dtype
                self.cache = self.model.new_cache(1024 if self._on_gpu() else 512)
        # one thread by default on a CPU: with torch's one per core, two agents of a match (or two
        # tournament workers) fight for the cores and each decision runs several times slower
        threads = self.threads or (1 if self.model.device.type == "cpu" else None)
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.builder = None
        if self.game is not None:
            self._prepare()

    def _prepare(self) -> None:
        """Build the prompt builder and prefill the fixed prefix (also warms the kernels up)."""
        if self.game is None:
            raise SpecError("the LLM agent does not know the game: run it through run_match (which "
                            "calls attach_env) or pass game=<name>")
        if self.model is None:
            self.reset(self.agent_id)
        self.builder = PromptBuilder(self.game, self.model.tokenizer, self.agent_id, self.system_prompt)
        with self.model.using(self._plan()):
            self.model.reset(self.cache)
            self.model.prefill(self.builder.prefix_ids, self.cache)
        self._prefix_len = self.cache.length

    def _plan(self) -> str:
        """This agent's plan of its (possibly shared, possibly handed in) model."""
        if self.plan_name is None:
            try:
                self.plan_name = self.model.plan_key(self.precision)
            except UserError:  # a model handed in under another name: its active plan
                self.plan_name = self.model.plan_name
        return self.plan_name

    def act(self, observation, info=None):
        t0 = time.perf_counter()
        if self.builder is None:
            self._prepare()
        prompt = self.builder.build(observation, info)
        self.last_prompt = prompt
        with self.model.using(self._plan()):
            action, t1, t2 = self._decide(prompt)
        self.last_timing = {"prefill_ms": (t1 - t0) * 1e3, "decode_ms": (t2 - t1) * 1e3,
                            "total_ms": (t2 - t0) * 1e3}
        return action

    def _decide(self, prompt: Prompt):
        """(action, end of prompt work, end of decision): the model's lock is held, its plan set."""
        model, cache = self.model, self.cache
        cache.truncate(self._prefix_len if self.prefix_cache else 0)
        new_ids = prompt.tail_ids if self.prefix_cache else prompt.ids
        generator = self._generator(len(new_ids)) if self.mode == "free" else None
        if self.mode == "constrained" and self.fused:
            # the new tokens and every legal reply in one forward: all of it is prefill work
            scores = model.score_continuations(prompt.candidates, cache, context=new_ids,
                                               runner=self._graph_runner()).tolist()
            t1 = t2 = time.perf_counter()
        elif generator is not None:
            # the tail's append and every token from CUDA graphs, read back every few tokens
            out = generator(new_ids, self.max_tokens, self.model.tokenizer.stop_ids)
            t1 = t2 = time.perf_counter()
            return self._parse(out, prompt), t1, t2
        else:
            model.prefill(new_ids, cache)
            self._sync()
            t1 = time.perf_counter()
            if self.mode == "constrained":
                scores = model.score_continuations(prompt.candidates, cache).tolist()
            else:
                action = self._generate(prompt)
            self._sync()
            t2 = time.perf_counter()
        if self.mode == "constrained":
            self.last_scores = {prompt.action_names[a]: s for a, s in zip(prompt.legal, scores)}
            action = prompt.legal[int(np.argmax(scores))]
        return action, t1, t2

    def _generate(self, prompt: Prompt):
        model, cache, tok = self.model, self.cache, self.model.tokenizer
        step = self._graph_decoder()
        if step is None or cache.length + self.max_tokens > cache.capacity:
            step = lambda t: model.decode(t, cache)[0]  # noqa: E731
        logits, out = cache.last_logits, []
        for _ in range(self.max_tokens):
            token = int(logits.argmax())
            if token in tok.stop_ids:
                break
            out.append(token)
            if len(out) == self.max_tokens:
                break
            logits = step(token)
        return self._parse(out, prompt)

    def _parse(self, out: list[int], prompt: Prompt):
        tok = self.model.tokenizer
        out = [t for t in out if t not in tok.stop_ids][:self.max_tokens]
        self.last_reply = tok.decode(out)
        action = parse_action(self.last_reply, prompt.action_names)
        if action is None or action not in prompt.legal:
            self.unparsed += 1
            return None
        return action

    def _runner(self, kind: str, make):
        """The runner of this kind for the current plan and cache, made (captured) once."""
        key = (kind, self._plan())
        runner = self._runners.get(key)
        if runner is None or runner.cache is not self.cache:
            runner = self._runners[key] = make()
        return runner

    @property
    def runners(self) -> dict:
        """The CUDA-graph runners made so far, by (kind, plan): kind scorer, generator or decoder."""
        return dict(self._runners)

    def _on_gpu(self) -> bool:
        return self.graphs and self.model.device.type == "cuda"

    def _graph_runner(self):
        """The CUDA-graph scorer of constrained decisions (None off a GPU or with graphs=0)."""
        if not self._on_gpu():
            return None
        return self._runner("scorer", lambda: GraphScorer(self.model, self.cache))

    def _generator(self, n_tail: int):
        """Free mode from CUDA graphs (None off a GPU, with graphs=0, or when it does not fit)."""
        if not self._on_gpu():
            return None
        gen = self._runner("generator", lambda: GraphGenerator(self.model, self.cache, self.max_tokens, 512))
        return gen if gen.fits(n_tail, self.max_tokens) else None

    def _graph_decoder(self):
        """Free mode's decode step replayed from a CUDA graph (None off a GPU or with graphs=0)."""
        if not self._on_gpu() or self.cache.length >= self.cache.capacity:
            return None
        return self._runner("decoder", lambda: GraphDecoder(self.model, self.cache))

    def _sync(self) -> None:
        if self.model is not None and self.model.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.model.device)

    def __repr__(self):
        return f"LLMAgent({self.model_name}@{self.precision}, mode={self.mode})"
