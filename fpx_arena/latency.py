"""Latency profiles: how long an agent takes to decide, as measured on some card or CPU.

The `profile` clock draws each decision's latency from the agent's profile, so a match that
was timed once on an H100 can be replayed bit-for-bit on a laptop. A profile file is JSON:

    {"format": "fpx-arena-latency-profile", "version": 1,
     "profiles": [
        {"agent": "llm:arena-tiny@fp8", "device": "NVIDIA H100 80GB HBM3",
         "samples_ms": [3.1, 3.0, 3.4]},
        {"agent": "fighter/reactive", "device": "any", "distribution": {"kind": "constant", "ms": 0}},
        {"agent": "llm:smollm2-135m@bf16", "device": "2-core CPU",
         "distribution": {"kind": "lognormal", "median_ms": 40, "sigma": 0.2}}]}

`samples_ms` is an empirical distribution (drawn uniformly, with replacement); `distribution`
is one of constant / uniform (low_ms, high_ms) / lognormal (median_ms, sigma).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UserError

FORMAT = "fpx-arena-latency-profile"
_KINDS = {"constant": ("ms",), "uniform": ("low_ms", "high_ms"), "lognormal": ("median_ms", "sigma")}


@dataclass(frozen=True)
class LatencyProfile:
    agent: str = "*"
    device: str = "unspecified"
    samples_ms: tuple[float, ...] = ()
    distribution: dict = field(default_factory=dict)

    def __post_init__(self):
        if bool(self.samples_ms) == bool(self.distribution):
            raise UserError(f"latency profile for {self.agent!r}: give either samples_ms or distribution")
        if self.samples_ms and any(not math.isfinite(s) or s < 0 for s in self.samples_ms):
            raise UserError(f"latency profile for {self.agent!r}: samples must be finite and >= 0 ms")
        if self.distribution:
            kind = self.distribution.get("kind")
            if kind not in _KINDS:
                raise UserError(f"latency profile for {self.agent!r}: unknown distribution kind {kind!r}; "
                                f"known: {', '.join(_KINDS)}")
            for key in _KINDS[kind]:
                value = self.distribution.get(key)
                if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                    raise UserError(f"latency profile for {self.agent!r}: {kind} needs {key} >= 0")

    @classmethod
    def constant(cls, ms: float, agent: str = "*") -> "LatencyProfile":
        return cls(agent=agent, distribution={"kind": "constant", "ms": float(ms)})

    @classmethod
    def coerce(cls, value, agent: str = "*") -> "LatencyProfile":
        """A profile from a number (constant ms), a list of samples, or a profile."""
        if isinstance(value, LatencyProfile):
            return value
        if isinstance(value, (int, float)):
            return cls.constant(value, agent)
        if isinstance(value, (list, tuple)) and value:
            return cls(agent=agent, samples_ms=tuple(float(v) for v in value))
        raise UserError(f"latency for {agent!r} must be ms, a list of ms samples, or a LatencyProfile")

    def sample(self, rng: np.random.Generator) -> float:
        if self.samples_ms:
            return self.samples_ms[int(rng.integers(len(self.samples_ms)))]
        d = self.distribution
        if d["kind"] == "constant":
            return float(d["ms"])
        if d["kind"] == "uniform":
            return float(rng.uniform(d["low_ms"], d["high_ms"]))
        return float(d["median_ms"] * math.exp(d["sigma"] * rng.standard_normal()))

    def to_dict(self) -> dict:
        out = {"agent": self.agent, "device": self.device}
        if self.samples_ms:
            out["samples_ms"] = list(self.samples_ms)
        else:
            out["distribution"] = dict(self.distribution)
        return out


@dataclass(frozen=True)
class CandidateProfiles:
    """The profiles of an adaptive agent's candidates (by candidate key, e.g. "arena-small@fp8";
    "*" for any other): the profile clock draws from the one the agent used for the decision
    it just made, as its ``latency_key()`` names it."""
    by_key: dict

    @classmethod
    def coerce(cls, value: dict, agent: str = "*") -> "CandidateProfiles":
        if not value:
            raise UserError(f"latency for {agent!r}: the per-candidate profile table is empty")
        return cls({str(k): LatencyProfile.coerce(v, agent=f"{agent}:{k}") for k, v in value.items()})

    def pick(self, key) -> LatencyProfile:
        key = str(key or "")
        for k in (key, key[4:] if key.startswith("llm:") else "llm:" + key, "*"):
            if k in self.by_key:
                return self.by_key[k]
        raise UserError(f"no latency profile for candidate {key!r}; profiles are given for "
                        f"{', '.join(sorted(self.by_key))}")


def latency_key(agent) -> str | None:
    """The candidate an adaptive agent made its last decision with (None for other agents)."""
    key_of = getattr(agent, "latency_key", None)
    return key_of() if callable(key_of) else None


def draw(profile, rng: np.random.Generator, agent=None) -> float:
    """One decision's latency from an agent's profile: from the profile of the candidate it
    used where the profile is per candidate (CandidateProfiles), else from the profile."""
    if isinstance(profile, CandidateProfiles):
        return profile.pick(latency_key(agent)).sample(rng)
    return profile.sample(rng)


def load_profiles(path: str | Path) -> dict[str, LatencyProfile]:
    """Profiles by agent spec from a profile file; one clear line for anything malformed."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"latency profile file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f"{path}: not a latency profile file (expected \"format\": \"{FORMAT}\")")
    if data.get("version") != 1:
        raise UserError(f"{path}: unsupported latency profile version {data.get('version')!r}")
    entries = data.get("profiles")
    if not isinstance(entries, list):
        raise UserError(f"{path}: \"profiles\" must be a list")
    out = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("agent"), str):
            raise UserError(f"{path}: profiles[{i}] needs an \"agent\" spec string")
        try:
            out[entry["agent"]] = LatencyProfile(
                agent=entry["agent"],
                device=str(entry.get("device", "unspecified")),
                samples_ms=tuple(float(s) for s in entry.get("samples_ms", ())),
                distribution=dict(entry.get("distribution", {})),
            )
        except (TypeError, ValueError) as e:
            raise UserError(f"{path}: profiles[{i}]: {e}") from None
    return out


def save_profiles(path: str | Path, profiles: list[LatencyProfile]) -> None:
    Path(path).write_text(json.dumps(
        {"format": FORMAT, "version": 1, "profiles": [p.to_dict() for p in profiles]}, indent=1))
