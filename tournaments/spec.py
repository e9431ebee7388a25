"""Tournament specs: a TOML file naming the agents, the games (arenas) with their clocks, and the
format. `load_spec(path)` validates everything it can without playing and raises SpecError naming
the file and line of the first problem. docs/tournaments.md describes every key. An example with
a built-in game (an arena is any game of `fpx_arena.games.names()`, third-party ones included):

    name = "fighter-precisions"
    format = "round-robin"            # or "gauntlet" (with baselines = ["..."])
    games_per_pairing = 8             # per arena and pairing; even when paired
    paired = true                     # each seed played twice, sides swapped
    seed = 1
    concurrency = 2                   # worker processes, or "auto"

    [[agents]]
    name = "bf16"
    spec = "llm:smollm2-135m@bf16"

    [games.fighter]
    clock = "profile"
    tick_hz = 60
    latency_profile = "profiles/h100.json"
    env = { round_ticks = 1200 }
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..agents.spec import AgentSpec
from ..errors import SpecError

FORMATS = ("round-robin", "gauntlet")
CLOCKS = ("wall", "measured", "profile", "lockstep")
LATE_POLICIES = ("noop", "repeat")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+@-]*$")

_TOP_KEYS = {"name", "description", "format", "baselines", "games_per_pairing", "paired", "seed",
             "concurrency", "gpus", "workers_per_gpu", "agents", "games", "ratings"}
_AGENT_KEYS = {"name", "spec", "games", "latency_ms", "latency_profile", "optional"}
_ARENA_KEYS = {"game", "clock", "tick_hz", "late", "env", "latency_profile", "latency_ms",
               "network_delay_ms", "max_ticks", "decision_timeout_s", "overage_ms", "deadline_ms"}
_RATING_KEYS = {"bootstrap", "openskill", "anchor", "confidence", "seed"}

# Caps far above any real tournament: beyond them a spec is a typo that would otherwise hang
# building the schedule or allocating the bootstrap, not a run anyone meant.
MAX_GAMES_PER_PAIRING = 100_000
MAX_MATCHES = 1_000_000
MAX_BOOTSTRAP = 100_000
MAX_TICK_HZ = 10_000.0
MAX_MS = 3_600_000.0  # an hour, in milliseconds
MAX_SEED = (1 << 63) - 1
# `llm:<model>@<precision>` inside an agent spec (also inside composite specs such as adaptive ones)
LLM_PART = re.compile(r"llm:([^@?&,;|\s]+)(?:@([^?&,;|\s]+))?")


@dataclass
class AgentEntry:
    name: str
    spec: str
    games: list | None = None  # arena labels; None = every arena its spec can play
    latency_ms: float | None = None
    latency_profile: str | None = None  # resolved path
    optional: bool = False

    @property
    def family(self) -> str | None:
        """The game a scripted bot belongs to (`<game>/<bot>` -> <game>), else None."""
        try:
            return AgentSpec.parse(self.spec).family
        except SpecError:  # reported where the spec is checked; no family meanwhile
            return None


@dataclass
class ArenaSpec:
    label: str
    game: str
    clock: str = "profile"
    tick_hz: float | None = None
    late: str = "noop"
    env: dict = field(default_factory=dict)
    latency_profile: str | None = None
    latency_ms: dict = field(default_factory=dict)  # agent name -> constant ms
    network_delay_ms: float | dict | None = None
    max_ticks: int | None = None
    decision_timeout_s: float = 5.0
    overage_ms: float | None = None
    deadline_ms: float | None = None


@dataclass
class RatingOptions:
    bootstrap: int = 1000
    openskill: bool = False
    anchor: str | None = None
    confidence: float = 0.95
    seed: int = 0


@dataclass
class TournamentSpec:
    name: str
    agents: list[AgentEntry]
    arenas: list[ArenaSpec]
    format: str = "round-robin"
    baselines: list[str] = field(default_factory=list)
    games_per_pairing: int = 2
    paired: bool = True
    seed: int = 0
    concurrency: int | str = "auto"
    gpus: str | list = "auto"
    workers_per_gpu: int = 1
    ratings: RatingOptions = field(default_factory=RatingOptions)
    description: str = ""
    source: str = ""  # the TOML text
    path: str = ""
    base_dir: str = ""  # the folder relative paths were resolved against (the spec file's)

    def error(self, path: tuple, message: str) -> SpecError:
        """A SpecError for the key at `path` of this spec, naming its file and line."""
        line = find_line(self.source, path)
        return SpecError(f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}")

    def agent(self, name: str) -> AgentEntry:
        return next(a for a in self.agents if a.name == name)

    def arena(self, label: str) -> ArenaSpec:
        return next(a for a in self.arenas if a.label == label)

    def identity(self) -> str:
        """A hash of everything that decides which matches exist and how they play (not of
        concurrency or placement): resuming with another identity would mix two tournaments."""
        d = asdict(self)
        for key in ("concurrency", "gpus", "workers_per_gpu", "ratings", "description", "source", "path", "base_dir"):
            d.pop(key)
        for agent in d["agents"]:
            agent.pop("optional")
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- locating keys

def find_line(text: str, path: tuple) -> int | None:
    """The 1-based line where the key at `path` is set, e.g. ("agents", 2, "spec") or
    ("games", "fighter", "clock"); the nearest enclosing table's header line when the key itself
    is not written out (a default); None if nothing matches."""
    table: tuple = ()
    counts: dict[tuple, int] = {}
    best = None
    best_len = -1
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^\[\[\s*([^\]]+?)\s*\]\]", line)
        if m:
            key = _split_key(m.group(1))
            counts[key] = counts.get(key, -1) + 1
            table = key + (counts[key],)
            here = table
        else:
            m = re.match(r"^\[\s*([^\]]+?)\s*\]", line)
            if m:
                table = _split_key(m.group(1))
                here = table
            else:
                m = re.match(r'^((?:"[^"]*"|\'[^\']*\'|[A-Za-z0-9_.\-\s])+?)\s*=', line)
                if not m:
                    continue
                here = table + _split_key(m.group(1))
        # the longest prefix of `path` this line sets wins; ties go to the first such line
        n = _common_prefix(here, path)
        if n == len(here) and n > best_len:
            best, best_len = lineno, n
    return best


def _split_key(key: str) -> tuple:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([^.\s]+)', key)
    return tuple(next(p for p in groups if p) if any(groups) else "" for groups in parts)


def _common_prefix(a: tuple, b: tuple) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class _Checker:
    def __init__(self, text: str, where: str):
        self.text, self.where = text, where

    def fail(self, path: tuple, message: str):
        line = find_line(self.text, path)
        at = f"{self.where}:{line}" if line else self.where
        raise SpecError(f"{at}: {message}")

    def typed(self, table: dict, key: str, kinds, path: tuple, default=None, what: str = ""):
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
            self.fail(path + (key,), f"{key} must be {what or _kind_name(kinds)}, got {value!r}")
        if not isinstance(value, kinds):
            self.fail(path + (key,), f"{key} must be {what or _kind_name(kinds)}, got {value!r}")
        return value

    def number(self, table: dict, key: str, path: tuple, default=None, *, lo: float = 0.0, hi: float,
               positive: bool = False, integer: bool = False, label: str | None = None):
        """A finite number (an integer with integer=True) in [lo, hi] ((lo, hi] with positive):
        NaN, inf and the absurd fail here, naming the line, instead of at the first match."""
        kinds = int if integer else (int, float)
        if key not in table:
            return default
        value = self.typed(table, key, kinds, path, default)
        label = label or key
        bad = not math.isfinite(value) or value > hi or value < lo or (positive and value <= lo)
        if bad:
            low = f"> {lo:g}" if positive else f">= {lo:g}"
            self.fail(path + (key,), f"{label} must be {'an integer' if integer else 'a finite number'} "
                      f"{low} and <= {hi:g}, got {value!r}")
        return value


def _kind_name(kinds) -> str:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


# --------------------------------------------------------------------------- loading

def load_spec(path: str | Path | None = None, *, text: str | None = None, name: str | None = None,
              base: str | Path | None = None) -> TournamentSpec:
    """Parse and validate a tournament spec from a file or from `text`. Relative paths (latency
    profiles, model folders and plan files in agent specs) are taken relative to `base`, else
    the file's folder (the working directory for text without a path): a stored spec resumed
    from another folder resolves them as when it started."""
    if text is None:
        if path is None:
            raise SpecError("load_spec needs a path or text")
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError(f"tournament spec not found: {p}") from None
        except IsADirectoryError:
            raise SpecError(f"tournament spec {p} is a folder, not a TOML file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise SpecError(f"cannot read tournament spec {p}: {e}") from None
        where, folder = str(p), p.resolve().parent
    else:
        where, folder = str(path or name or "<spec>"), Path(path).resolve().parent if path else Path.cwd()
    base = Path(base).resolve() if base is not None else folder
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:  # its message already says "(at line N, column M)"
        raise SpecError(f"{where}: not valid TOML: {e}") from None
    return _validate(data, text, where, base, name)


def _validate(data: dict, text: str, where: str, base: Path, default_name: str | None) -> TournamentSpec:
    c = _Checker(text, where)
    for key in data:
        if key not in _TOP_KEYS:
            c.fail((key,), f"unknown key {key!r}; known: {', '.join(sorted(_TOP_KEYS))}")
    name = c.typed(data, "name", str, (), default_name or Path(where).stem or "tournament")
    if not NAME_RE.match(name):
        c.fail(("name",), f"name {name!r} may hold only letters, digits and _ . + @ -")
    fmt = c.typed(data, "format", str, (), "round-robin")
    if fmt not in FORMATS:
        c.fail(("format",), f"unknown format {fmt!r}; choose {' or '.join(FORMATS)}")
    paired = c.typed(data, "paired", bool, (), True)
    per_pair = c.number(data, "games_per_pairing", (), 2, lo=1, hi=MAX_GAMES_PER_PAIRING, integer=True)
    if paired and per_pair % 2:
        c.fail(("games_per_pairing",), f"games_per_pairing must be even with paired = true "
               f"(each seed is played from both sides), got {per_pair}")
    seed = c.number(data, "seed", (), 0, hi=MAX_SEED, integer=True)
    concurrency = data.get("concurrency", "auto")
    if not (concurrency == "auto" or (isinstance(concurrency, int) and not isinstance(concurrency, bool)
                                      and 1 <= concurrency <= 4096)):
        c.fail(("concurrency",), f"concurrency must be a positive integer or \"auto\", got {concurrency!r}")
    gpus = data.get("gpus", "auto")
    if not (gpus in ("auto", "none") or (isinstance(gpus, list) and all(
            isinstance(g, int) and not isinstance(g, bool) and g >= 0 for g in gpus))):
        c.fail(("gpus",), f"gpus must be \"auto\", \"none\" or a list of GPU indices, got {gpus!r}")
    workers_per_gpu = c.number(data, "workers_per_gpu", (), 1, lo=1, hi=256, integer=True)

    agents = _agents(c, data, base)
    names = [a.name for a in agents]
    arenas = _arenas(c, data, base, names)
    labels = [a.label for a in arenas]
    for i, a in enumerate(agents):
        for label in a.games or ():
            if label not in labels:
                c.fail(("agents", i, "games"), f"agent {a.name!r} names unknown game {label!r}; "
                       f"this spec's games: {', '.join(labels)}")

    baselines = c.typed(data, "baselines", list, (), [])
    for b in baselines:
        if b not in names:
            c.fail(("baselines",), f"baseline {b!r} is not one of the agents ({', '.join(names)})")
    if fmt == "gauntlet" and not baselines:
        c.fail(("format",), "a gauntlet needs baselines = [\"agent name\", ...]")
    if fmt == "round-robin" and baselines:
        c.fail(("baselines",), "baselines only apply to format = \"gauntlet\"")
    if fmt == "gauntlet" and len(baselines) == len(names):
        c.fail(("baselines",), "a gauntlet needs at least one agent that is not a baseline")
    n = len(names)
    pairs = len(baselines) * (n - len(baselines)) if fmt == "gauntlet" else n * (n - 1) // 2
    if pairs * per_pair * len(arenas) > MAX_MATCHES:
        c.fail(("games_per_pairing",), f"this spec schedules up to {pairs * per_pair * len(arenas):,} matches "
               f"({pairs} pairings x {per_pair} games x {len(arenas)} games); the limit is {MAX_MATCHES:,}")

    r = data.get("ratings", {})
    if not isinstance(r, dict):
        c.fail(("ratings",), "ratings must be a table")
    for key in r:
        if key not in _RATING_KEYS:
            c.fail(("ratings", key), f"unknown ratings key {key!r}; known: {', '.join(sorted(_RATING_KEYS))}")
    ratings = RatingOptions(
        bootstrap=c.number(r, "bootstrap", ("ratings",), 1000, hi=MAX_BOOTSTRAP, integer=True),
        openskill=c.typed(r, "openskill", bool, ("ratings",), False),
        anchor=c.typed(r, "anchor", str, ("ratings",), None),
        confidence=float(c.typed(r, "confidence", (int, float), ("ratings",), 0.95)),
        seed=c.number(r, "seed", ("ratings",), 0, hi=MAX_SEED, integer=True),
    )
    if ratings.anchor is not None and ratings.anchor not in names:
        c.fail(("ratings", "anchor"), f"anchor {ratings.anchor!r} is not one of the agents")
    if not 0.5 <= ratings.confidence < 1:  # NaN fails here too
        c.fail(("ratings", "confidence"), "confidence must be in [0.5, 1)")

    return TournamentSpec(
        name=name, agents=agents, arenas=arenas, format=fmt, baselines=baselines,
        games_per_pairing=per_pair, paired=paired, seed=seed, concurrency=concurrency, gpus=gpus,
        workers_per_gpu=workers_per_gpu, ratings=ratings,
        description=c.typed(data, "description", str, (), ""), source=text, path=where, base_dir=str(base),
    )


def resolve_agent_paths(spec: str, base: Path) -> str:
    """The agent spec with each relative model path and plan file of its `llm:` parts made
    absolute against `base`, so that workers and resumed runs find them from any folder."""
    def fix(m):
        model, precision = m.group(1), m.group(2)
        if _is_path(model):
            model = _resolve(base, model)
        if precision is not None and (precision.lower().endswith(".json") or "/" in precision):
            precision = _resolve(base, precision)
        return f"llm:{model}" + (f"@{precision}" if precision is not None else "")

    return LLM_PART.sub(fix, spec)


def _is_path(model: str) -> bool:
    return "/" in model or model.endswith(".gguf") or model.startswith((".", "~"))


def _resolve(base: Path, value: str) -> str:
    if value.startswith("package:"):  # a file shipped inside fpx_arena (the default's latency profiles)
        from importlib.resources import files

        return str(files("fpx_arena").joinpath(value[len("package:"):]))
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _agents(c: _Checker, data: dict, base: Path) -> list[AgentEntry]:
    raw = data.get("agents")
    if not isinstance(raw, list) or not raw:
        c.fail(("agents",), "the spec needs at least two [[agents]] tables, each with name and spec")
    out: list[AgentEntry] = []
    seen: set = set()
    for i, entry in enumerate(raw):
        path = ("agents", i)
        if not isinstance(entry, dict):
            c.fail(path, "each agents entry must be a table with name and spec")
        for key in entry:
            if key not in _AGENT_KEYS:
                c.fail(path + (key,), f"unknown agent key {key!r}; known: {', '.join(sorted(_AGENT_KEYS))}")
        spec = c.typed(entry, "spec", str, path)
        if not spec or not spec.strip():
            c.fail(path, "agent needs spec = \"...\" (a spec of `fpx-arena agents`: \"<game>/<bot>\", "
                           "\"llm:<model>@<precision>\", \"package.module:Class\")")
        try:
            AgentSpec.parse(spec)
        except SpecError as e:
            c.fail(path + ("spec",), str(e))
        name = c.typed(entry, "name", str, path) or _default_name(spec)
        if not NAME_RE.match(name):
            c.fail(path + ("name",), f"agent name {name!r} may hold only letters, digits and _ . + @ -")
        if name in seen:
            c.fail(path + ("name",), f"two agents are named {name!r}")
        seen.add(name)
        games = c.typed(entry, "games", list, path)
        if games is not None and not all(isinstance(g, str) for g in games):
            c.fail(path + ("games",), "games must be a list of game names from [games]")
        latency = c.number(entry, "latency_ms", path, hi=MAX_MS)
        profile = c.typed(entry, "latency_profile", str, path)
        out.append(AgentEntry(
            name=name, spec=resolve_agent_paths(spec.strip(), base), games=games,
            latency_ms=float(latency) if latency is not None else None,
            latency_profile=_resolve(base, profile) if profile else None,
            optional=c.typed(entry, "optional", bool, path, False),
        ))
    if len(out) < 2:
        c.fail(("agents",), "a tournament needs at least two agents")
    return out


def _default_name(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+@-]+", "-", spec.replace("llm:", "")).strip("-") or "agent"


def _arenas(c: _Checker, data: dict, base: Path, names: list[str]) -> list[ArenaSpec]:
    raw = data.get("games")
    if not isinstance(raw, dict) or not raw:
        c.fail(("games",), "the spec needs at least one [games.<name>] table")
    out = []
    for label, table in raw.items():
        path = ("games", label)
        if not isinstance(table, dict):
            c.fail(path, f"games.{label} must be a table")
        if not NAME_RE.match(label):
            c.fail(path, f"game label {label!r} may hold only letters, digits and _ . + @ -")
        for key in table:
            if key not in _ARENA_KEYS:
                c.fail(path + (key,), f"unknown game key {key!r}; known: {', '.join(sorted(_ARENA_KEYS))}")
        clock = c.typed(table, "clock", str, path, "profile")
        if clock not in CLOCKS:
            c.fail(path + ("clock",), f"unknown clock {clock!r}; choose one of {', '.join(CLOCKS)}")
        late = c.typed(table, "late", str, path, "noop")
        if late not in LATE_POLICIES:
            c.fail(path + ("late",), f"unknown late policy {late!r}; choose noop or repeat")
        tick_hz = c.number(table, "tick_hz", path, positive=True, hi=MAX_TICK_HZ)
        env = c.typed(table, "env", dict, path, {})
        latency = c.typed(table, "latency_ms", dict, path, {})
        for agent, ms in latency.items():
            if agent not in names:
                c.fail(path + ("latency_ms", agent), f"latency_ms names unknown agent {agent!r}")
            c.number(latency, agent, path + ("latency_ms",), hi=MAX_MS, label=f"latency_ms.{agent}")
        delay = c.number(table, "network_delay_ms", path, hi=MAX_MS)
        max_ticks = c.number(table, "max_ticks", path, lo=1, hi=100_000_000, integer=True)
        profile = c.typed(table, "latency_profile", str, path)
        out.append(ArenaSpec(
            label=label, game=c.typed(table, "game", str, path, label), clock=clock,
            tick_hz=float(tick_hz) if tick_hz is not None else None, late=late, env=env,
            latency_profile=_resolve(base, profile) if profile else None,
            latency_ms={k: float(v) for k, v in latency.items()},
            network_delay_ms=float(delay) if delay is not None else None, max_ticks=max_ticks,
            decision_timeout_s=float(c.number(table, "decision_timeout_s", path, 5.0, positive=True, hi=3600.0)),
            overage_ms=c.number(table, "overage_ms", path, hi=MAX_MS),
            deadline_ms=c.number(table, "deadline_ms", path, positive=True, hi=MAX_MS),
        ))
    return out


__all__ = ["TournamentSpec", "AgentEntry", "ArenaSpec", "RatingOptions", "load_spec", "find_line",
           "FORMATS", "CLOCKS"]
