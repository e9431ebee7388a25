"""AgentSpec: the one parser of agent spec strings.

    random | noop | human                  a built-in name
    <family>/<bot>                         a scripted bot of a game (fighter/reactive)
    llm:<model>[@<precision>]              an LLM agent (precision defaults to bf16)
    adaptive:<spec>,<spec>[,...]           an agent that switches between model-backed specs
                                           (options after the last one are the whole agent's)
    package.module:Class                   any importable factory
    <name>                                 a name registered under the entry-point group

Every form takes options after ``?`` as ``key=value`` pairs joined by ``&``
(``llm:m@fp8?mode=free&max_tokens=8``); values are coerced to int, float or bool where they
look like one. ``str(AgentSpec.parse(s)) == s`` for every well-formed ``s`` (whitespace aside).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import SpecError

BUILTIN_NAMES = ("random", "noop", "human")
KINDS = ("builtin", "family", "llm", "adaptive", "module", "entry")


def coerce(value: str):
    """A spec option's value: int, float, bool or the string itself."""
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


def _parse_options(text: str, query: str) -> tuple:
    pairs = []
    for part in filter(None, query.split("&")):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise SpecError(f"{text!r}: bad option {part!r}: expected key=value")
        pairs.append((key, value))
    return tuple(pairs)


@dataclass(frozen=True)
class AgentSpec:
    kind: str                 # one of KINDS
    base: str                 # the spec without its options
    options: tuple = ()       # ((key, raw value), ...) in the order written
    parts: tuple = field(default=(), compare=False)  # adaptive: the AgentSpecs it switches between

    @classmethod
    def parse(cls, text) -> "AgentSpec":
        if isinstance(text, AgentSpec):
            return text
        if not isinstance(text, str) or not text.strip():
            raise SpecError(f"agent spec must be a non-empty string, got {text!r}")
        text = text.strip()
        base, _, query = text.partition("?")
        options = _parse_options(text, query)
        if base.startswith("adaptive:"):  # options after the last candidate are the whole agent's
            parts = tuple(cls.parse(p.strip()) for p in base[len("adaptive:"):].split(",") if p.strip())
            if not parts:
                raise SpecError(f"{text!r}: expected adaptive:<spec>,<spec>[,...]")
            return cls("adaptive", "adaptive:" + ",".join(str(p) for p in parts), options, parts)
        if base.startswith("llm:"):
            model = base[4:].partition("@")[0]
            if not model:
                raise SpecError(f"{text!r}: expected llm:<model>@<precision>")
            kind = "llm"
        elif base in BUILTIN_NAMES:
            kind = "builtin"
        elif ":" in base:
            module, _, attr = base.partition(":")
            if not module or not attr:
                raise SpecError(f"{text!r}: expected package.module:Class")
            kind = "module"
        elif "/" in base:
            family, _, name = base.partition("/")
            if not family or not name:
                raise SpecError(f"{text!r}: expected <game>/<bot>")
            kind = "family"
        else:
            kind = "entry"
        return cls(kind, base, options)

    def __str__(self) -> str:
        if not self.options:
            return self.base
        return self.base + "?" + "&".join(f"{k}={v}" for k, v in self.options)

    @property
    def kwargs(self) -> dict[str, Any]:
        return {k: coerce(v) for k, v in self.options}

    @property
    def family(self) -> str | None:
        """The game a scripted bot belongs to (fighter/reactive -> fighter), else None."""
        return self.base.partition("/")[0] if self.kind == "family" else None

    @property
    def name(self) -> str:
        """The bot of a family spec, the entry-point or built-in name, else the base."""
        return self.base.partition("/")[2] if self.kind == "family" else self.base

    @property
    def model(self) -> str | None:
        return self.base[4:].partition("@")[0] if self.kind == "llm" else None

    @property
    def precision(self) -> str | None:
        """The precision an llm spec names (bf16 where it names none), else None."""
        if self.kind != "llm":
            return None
        return self.base[4:].partition("@")[2] or "bf16"

    @property
    def model_backed(self) -> bool:
        """Whether building it loads a model (GPU placement, model affinity, preflight)."""
        return self.kind in ("llm", "adaptive")

    @property
    def isolatable(self) -> bool:
        """Third-party code (module paths, entry points) that can run in a child process."""
        return self.kind in ("module", "entry")

    @property
    def label(self) -> str:
        """A short name for viewers: the model of an llm spec, else the base."""
        return self.model if self.kind == "llm" else self.base

    def with_options(self, **options) -> "AgentSpec":
        merged = dict(self.options)
        merged.update({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in options.items()})
        return AgentSpec(self.kind, self.base, tuple(merged.items()), self.parts)


def parse(text) -> AgentSpec:
    return AgentSpec.parse(text)


__all__ = ["AgentSpec", "parse", "coerce", "BUILTIN_NAMES", "KINDS"]
