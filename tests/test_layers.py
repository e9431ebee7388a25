"""The layers of fpx-arena (docs/architecture.md), read from the source with ``ast``:

    base      fpx_arena.errors                                  imports nothing of the project
    kernels   kernels/ (fpx_arena.kernels)                      leaf: torch/triton only
    games     games/ (fpx_arena.games)                          leaf beside the kernels
    engine    fpx_arena/llm                                     kernels only: never a game or an agent
    agents    agents/ (fpx_arena.agents)                        engine, games, kernels
    core      fpx_arena/*.py (match, clocks, scheduler, replay)  agents and below
    apps      tournaments/, fpx_arena/{viewer,policy,commands,precision_apps}, cli   anything

Checked: every import points down (or within its layer); no import cycle between modules
(imports inside functions count: they are edges too); imports inside functions are at most 15%
of internal imports, not counting those of modules that pull in a heavy optional dependency
(torch, pygame, ...), which commands and the viewer import late on purpose; no module imports
an underscore name of another module, nor an underscore attribute of an object other than
itself; no code outside games/<name>/ names a built-in game.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# source folder -> the dotted name it is installed as (pyproject.toml's package-dir)
PACKAGE_DIRS = {"fpx_arena": "fpx_arena", "kernels": "fpx_arena.kernels", "games": "fpx_arena.games",
                "agents": "fpx_arena.agents", "tournaments": "fpx_arena.tournaments"}
APP_PACKAGES = ("fpx_arena.tournaments", "fpx_arena.viewer", "fpx_arena.policy", "fpx_arena.commands",
                "fpx_arena.precision_apps")
ALLOWED = {
    "base": {"base"},
    "kernels": {"kernels", "base"},
    "games": {"games", "base"},
    "engine": {"engine", "kernels", "base"},
    "agents": {"agents", "engine", "games", "kernels", "base"},
    "core": {"core", "agents", "engine", "games", "kernels", "base"},
    "apps": {"apps", "core", "agents", "engine", "games", "kernels", "base"},
}
HEAVY = {"torch", "triton", "pygame", "ray", "matplotlib", "transformers", "PIL", "imageio_ffmpeg", "openskill"}
MAX_FUNCTION_IMPORT_SHARE = 0.15

# Edges that still break the rules, each with the reason and the fix it waits for. Keep this
# short: the test fails on any edge not listed, and on a listed edge that no longer exists.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {
}
# underscore names imported from another module: (importing module, name) -> reason
KNOWN_PRIVATE_USES: dict[tuple[str, str], str] = {}


def module_files() -> dict[str, Path]:
    out = {}
    for folder, dotted in PACKAGE_DIRS.items():
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("")
            parts = [p for p in rel.parts]
            if folder == "fpx_arena" and parts and parts[0] in PACKAGE_DIRS:
                continue  # a folder of the same name inside fpx_arena/ would be a mistake anyway
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([dotted] + parts)] = path
    return out


MODULES = module_files()


def layer_of(module: str) -> str:
    if module == "fpx_arena.errors":
        return "base"
    for prefix, layer in (("fpx_arena.kernels", "kernels"), ("fpx_arena.games", "games"),
                          ("fpx_arena.llm", "engine"), ("fpx_arena.agents", "agents")):
        if module == prefix or module.startswith(prefix + "."):
            return layer
    if module in ("fpx_arena.cli", "fpx_arena.__main__") or module.startswith(APP_PACKAGES):
        return "apps"
    return "core"


def is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


class Import:
    def __init__(self, source: str, target: str, names: list[str], in_function: bool, line: int):
        self.source, self.target, self.names, self.in_function, self.line = source, target, names, in_function, line

    def __repr__(self):
        return f"{self.source}:{self.line} -> {self.target}"


def resolve(source: str, node) -> list[tuple[str, list[str]]]:
    """[(absolute module, names imported from it)] of one import statement."""
    if isinstance(node, ast.Import):
        return [(a.name, []) for a in node.names]
    if node.level:
        base = source if is_package(source) else source.rpartition(".")[0]
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        module = f"{base}.{node.module}" if node.module else base
    else:
        module = node.module or ""
    out, plain = [], []
    for alias in node.names:
        sub = f"{module}.{alias.name}"
        if sub in MODULES:  # `from . import replay`: the submodule itself
            out.append((sub, []))
        else:
            plain.append(alias.name)
    if plain:
        out.append((module, plain))
    return out


def internal(target: str) -> str | None:
    """The project module an import lands in (its longest known prefix), or None."""
    while target:
        if target in MODULES:
            return target
        target = target.rpartition(".")[0]
    return None


def collect() -> tuple[list[Import], dict[str, set[str]]]:
    """(internal imports, external top-level packages each module imports at its top)."""
    imports, external_top = [], {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        external_top[module] = set()

        def visit(node, in_function):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    for target, names in resolve(module, child):
                        inner = internal(target)
                        if inner is not None:
                            imports.append(Import(module, inner, names, in_function, child.lineno))
                        elif not in_function and target:
                            external_top[module].add(target.split(".")[0])
                visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

        visit(tree, False)
    return imports, external_top


IMPORTS, EXTERNAL_TOP = collect()


def heavy_modules() -> set[str]:
    """Modules whose import (at the top, transitively) loads a heavy optional dependency."""
    deps: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in IMPORTS:
        if not imp.in_function and imp.target != imp.source:
            deps[imp.source].add(imp.target)
    heavy = {m for m, ext in EXTERNAL_TOP.items() if ext & HEAVY}
    changed = True
    while changed:
        changed = False
        for m, ds in deps.items():
            if m not in heavy and ds & heavy:
                heavy.add(m)
                changed = True
    return heavy


def edge_key(imp: Import) -> tuple[str, str]:
    return imp.source, imp.target


def test_every_module_is_found_and_parsed():
    assert len(MODULES) > 60
    for name in ("fpx_arena.games.fighter", "fpx_arena.games.market.environment", "fpx_arena.llm.calibrate",
                 "fpx_arena.agents.llm", "fpx_arena.scheduler", "fpx_arena.viewer.app", "fpx_arena.kernels"):
        assert name in MODULES, name
    assert {layer_of(m) for m in MODULES} == set(ALLOWED)


def test_imports_point_down_the_layers():
    bad = []
    for imp in IMPORTS:
        a, b = layer_of(imp.source), layer_of(imp.target)
        if b not in ALLOWED[a] and edge_key(imp) not in KNOWN_EXCEPTIONS:
            bad.append(f"{imp} ({a} must not import {b})")
    assert not bad, "imports against the layers:\n" + "\n".join(sorted(set(bad)))


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return out


def module_edges(skip_known: bool = True) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for imp in IMPORTS:
        if imp.target == imp.source or (skip_known and edge_key(imp) in KNOWN_EXCEPTIONS):
            continue
        # a package's __init__ re-exporting its own submodules is not a cycle with them
        if imp.source == imp.target.rpartition(".")[0] and is_package(imp.source) and not imp.names:
            continue
        edges.setdefault(imp.source, set()).add(imp.target)
    return edges


def test_no_import_cycles():
    cycles = find_cycles(module_edges())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_few_imports_inside_functions():
    heavy = heavy_modules()
    counted = [i for i in IMPORTS if i.target != i.source]
    late = [i for i in counted if i.in_function and i.target not in heavy]
    share = len(late) / len(counted)
    assert share <= MAX_FUNCTION_IMPORT_SHARE, (
        f"{len(late)} of {len(counted)} internal imports ({share:.0%}) sit inside functions without a heavy "
        f"dependency to defer:\n" + "\n".join(map(repr, late)))


def test_no_underscore_names_from_other_modules():
    bad = []
    for imp in IMPORTS:
        for name in imp.names:
            if (name.startswith("_") and not name.startswith("__") and imp.target != imp.source
                    and (imp.source, name) not in KNOWN_PRIVATE_USES):
                bad.append(f"{imp}: {name}")
    for module, path in MODULES.items():  # attribute access: `other_module._private`
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for (target, names), alias in zip(resolve(module, node), node.names):
                    if internal(target) == target and not names:
                        aliases[alias.asname or alias.name.split(".")[-1]] = target
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                bad.append(f"{module}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not bad, "underscore names used across modules:\n" + "\n".join(sorted(bad))


BUILTIN_GAMES = sorted(p.name for p in (ROOT / "games").iterdir() if (p / "__init__.py").is_file())


def names_a_game(text: str, game: str, prose_allowed: bool) -> bool:
    """Whether `text` uses `game` as a name: a token of an identifier, a spec (``game/bot``) or a
    module path. Prose (a string with spaces: help text, prompts, docs) may mention games."""
    if prose_allowed and any(c.isspace() for c in text):
        return False
    return game in re.split(r"[^a-z0-9]+", text.lower())


def code_names(tree) -> list[tuple[int, str, bool]]:
    """(line, text, is a string) of a module's identifiers and string constants, without its
    docstrings (docs may give examples; code may not depend on a particular game)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            out.append((node.lineno, node.value, True))
        elif isinstance(node, ast.Name):
            out.append((node.lineno, node.id, False))
        elif isinstance(node, ast.Attribute):
            out.append((node.lineno, node.attr, False))
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            out.append((node.lineno, node.name, False))
        elif isinstance(node, ast.alias):
            out.append((getattr(node, "lineno", 0), node.name, False))
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.lineno, node.module, False))
    return out


def test_no_code_outside_a_games_folder_names_a_game():
    assert BUILTIN_GAMES == ["fighter", "market"]
    bad = []
    for module, path in MODULES.items():
        owner = module.split(".")[2] if module.startswith("fpx_arena.games.") else None
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, text, is_string in code_names(tree):
            for game in BUILTIN_GAMES:
                if game != owner and names_a_game(text, game, is_string):
                    bad.append(f"{path.relative_to(ROOT)}:{line}: {text[:70]!r}")
    assert not bad, "code that names a game outside its folder:\n" + "\n".join(sorted(set(bad)))


def test_the_game_name_check():
    assert names_a_game("fighter/reactive", "fighter", True)
    assert names_a_game("fpx_arena.agents.market_bots", "market", True)
    assert names_a_game("draw_market", "market", False)
    assert not names_a_game("help: e.g. p0=fighter/reactive", "fighter", True)  # prose
    assert not names_a_game("marketmaker", "market", False)


# `obj._name` on an object of another class: (module, attribute) -> reason
KNOWN_PRIVATE_ATTRIBUTES: dict[tuple[str, str], str] = {
    ("fpx_arena.llm.linear", "_fpx_dequantized"): "a dequantized-weight cache slot the engine hangs on a kernels QuantizedWeight (a WeakKeyDictionary needs hashable weights)",
    ("fpx_arena.llm.linear", "_fpx_rows_of"): "item 6: the same, for the rows a quantized matmul kept",
}
TORCH_PRIVATE = {"_parameters", "_buffers", "_modules"}  # torch.nn.Module's own, read on purpose
ARGPARSE_OWN = {"_run"}  # cli.py's own default on its argparse namespace


def private_attribute_uses() -> set[tuple[str, str, int]]:
    out = set()
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                    and node.attr not in TORCH_PRIVATE | ARGPARSE_OWN):
                out.add((module, node.attr, node.lineno))
    return out


def test_no_private_attributes_of_other_objects():
    bad = [f"{m}:{line} .{attr}" for m, attr, line in private_attribute_uses()
           if (m, attr) not in KNOWN_PRIVATE_ATTRIBUTES]
    assert not bad, "underscore attributes of other objects:\n" + "\n".join(sorted(bad))


def test_known_exceptions_are_still_needed():
    edges = {edge_key(i) for i in IMPORTS}
    stale = [k for k in KNOWN_EXCEPTIONS if k not in edges]
    assert not stale, f"remove these from KNOWN_EXCEPTIONS, they are gone: {stale}"
    used = {(i.source, n) for i in IMPORTS for n in i.names}
    stale = [k for k in KNOWN_PRIVATE_USES if k not in used]
    assert not stale, f"remove these from KNOWN_PRIVATE_USES, they are gone: {stale}"
    attrs = {(m, a) for m, a, _ in private_attribute_uses()}
    stale = [k for k in KNOWN_PRIVATE_ATTRIBUTES if k not in attrs]
    assert not stale, f"remove these from KNOWN_PRIVATE_ATTRIBUTES, they are gone: {stale}"


@pytest.mark.parametrize("source,target,ok", [
    ("fpx_arena.llm.model", "fpx_arena.kernels.ops", True),
    ("fpx_arena.llm.calibrate", "fpx_arena.games", False),
    ("fpx_arena.llm.loader", "fpx_arena.agents.llm", False),
    ("fpx_arena.games.fighter", "fpx_arena.kernels", False),
    ("fpx_arena.agents.llm", "fpx_arena.viewer.app", False),
    ("fpx_arena.scheduler", "fpx_arena.tournaments.runner", False),
    ("fpx_arena.viewer.app", "fpx_arena.scheduler", True),
    ("fpx_arena.agents.human", "fpx_arena.games", True),
])
def test_the_layer_rule(source, target, ok):
    assert (layer_of(target) in ALLOWED[layer_of(source)]) is ok
