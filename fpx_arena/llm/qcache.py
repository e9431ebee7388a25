"""The on-disk cache of quantized weights and calibration rankings, and model identities.

Layout under ``cache_dir()`` ($FPX_ARENA_CACHE, else ~/.cache/fpx-arena):

- ``rankings/<checkpoint sha>-<data>.json``: the per-layer FP4 errors of a calibration.
- ``qweights/<key>.<payload sha256>.safetensors``: the quantized weights of one (checkpoint,
  plan) pair. Everything is keyed on content: ``key`` hashes the source checkpoint's bytes
  (hashed afresh at every load, never memoized by path, size or time, so weights changed in
  place under the same size and mtime never load stale) with the plan; the file's name carries
  the sha256 of its own bytes, and its safetensors header the key's parts. A file whose bytes
  do not hash to its name, or made for another key, is reported in one line on stderr (logger
  ``fpx_arena.cache``), removed and rebuilt: it is never used silently.

``FPX_ARENA_QCACHE=0`` turns the quantized-weight cache off (rankings are still cached).
"""
from __future__ import annotations

import hashlib
import json
import os
import logging
import threading

CACHE_VERSION = 2  # 2: content-addressed files, parts in the safetensors header


log = logging.getLogger("fpx_arena.cache")


def cache_dir() -> str:
    return os.environ.get("FPX_ARENA_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "fpx-arena")


def warn(msg: str) -> None:
    """One line on stderr (through logging: Python's last-resort handler prints bare WARNING
    messages when the application configured none)."""
    log.warning(msg)


def _write_json(path: str, data) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}-{threading.get_ident()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def file_sha256(path: str, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def checkpoint_files(path: str) -> list[str]:
    """The files whose bytes define a checkpoint's weights: the .gguf, or an HF folder's config
    and safetensors files."""
    if os.path.isfile(path):
        return [path]
    return [os.path.join(path, f) for f in sorted(os.listdir(path))
            if f == "config.json" or f.endswith(".safetensors")]


def checkpoint_sha256(path: str) -> str:
    """Content hash of a checkpoint: sha256 over its files' names and bytes, read every time
    (a memo keyed on path, size and mtime would trust a file changed in place; hashing costs a
    fraction of the read that loading does anyway)."""
    h = hashlib.sha256()
    for f in checkpoint_files(path):
        h.update(os.path.basename(f).encode() + b"\0" + file_sha256(f).encode())
    return h.hexdigest()


def model_identity(src, layer_shapes: dict[str, tuple[int, int]]) -> dict:
    """What a plan file records about its model: the checkpoint's content hash and the hash of
    its linear layers' names and shapes."""
    layers = json.dumps(sorted([n, list(s)] for n, s in layer_shapes.items()))
    return {"name": getattr(src.config, "name", "") or os.path.basename(os.path.normpath(src.path)),
            "checkpoint_sha256": checkpoint_sha256(src.path),
            "layers_sha256": hashlib.sha256(layers.encode()).hexdigest(),
            "n_linear": len(layer_shapes)}


# --- quantized weights -------------------------------------------------------------------------
def enabled() -> bool:
    return os.environ.get("FPX_ARENA_QCACHE", "1") not in ("0", "off", "false", "no")


class QuantCache:
    """The cache entry of one (checkpoint, plan): ``load()`` returns {layer: QuantizedWeight}
    or None (absent, or unusable: reported and removed); ``save(weights)`` writes it.
    ``tensors_path`` is the file used (after a hit or a save)."""

    def __init__(self, checkpoint_sha: str, formats: dict[str, str], root: str | None = None):
        from ..kernels import LAYOUT, is_quantized

        self.parts = {"version": CACHE_VERSION, "layout": LAYOUT, "checkpoint_sha256": checkpoint_sha,
                      "formats": {n: f for n, f in sorted(formats.items()) if is_quantized(f)},
                      # q/k/v and gate/up are quantized together (one per-tensor scale per group)
                      "grouping": "fused-qkv-gateup-v1"}
        self.key = hashlib.sha256(json.dumps(self.parts, sort_keys=True).encode()).hexdigest()[:32]
        self.folder = os.path.join(root or cache_dir(), "qweights")
        self.tensors_path = os.path.join(self.folder, self.key + ".safetensors")

    def _candidates(self) -> list[str]:
        try:
            names = os.listdir(self.folder)
        except OSError:
            return []
        return [os.path.join(self.folder, n) for n in sorted(names)
                if n.startswith(self.key + ".") and n.endswith(".safetensors")]

    def _reject(self, path: str, why: str) -> None:
        warn(f"quantized-weight cache {path}: {why}; rebuilding it")
        try:
            os.remove(path)
        except OSError:
            pass

    def load(self, device="cpu"):
        for path in self._candidates():
            out = self._load(path, device)
            if out is not None:
                self.tensors_path = path
                return out
        return None

    def _load(self, path: str, device):
        from safetensors import safe_open
        from safetensors.torch import load as load_bytes

        from ..kernels import QuantizedWeight

        named = os.path.basename(path)[len(self.key) + 1: -len(".safetensors")]
        # read into memory, check and parse the same bytes: nothing is memory-mapped, so a file
        # changed later cannot corrupt (or crash) a model that is already loaded
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            self._reject(path, f"unreadable ({e})")
            return None
        if hashlib.sha256(data).hexdigest() != named:
            self._reject(path, f"its {len(data)} bytes do not hash to its name (truncated, corrupt or altered)")
            return None
        try:
            with safe_open(path, framework="pt") as f:  # only for the header's metadata
                parts = json.loads((f.metadata() or {}).get("fpx_arena_parts", "null"))
        except Exception:  # safetensors raises its own types; the bytes were checked above
            parts = None
        if parts != self.parts:
            self._reject(path, "it was made for another checkpoint or plan (its header does not match)")
            return None
        try:
            sd = {k: v.to(device) for k, v in load_bytes(data).items()}
            out = {name: QuantizedWeight.from_state_dict(sd, name + ".") for name in self.parts["formats"]}
        except Exception as e:  # safetensors and from_state_dict raise their own types
            self._reject(path, f"unreadable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
            return None
        for name, qw in out.items():
            if qw.fmt != self.parts["formats"][name]:
                self._reject(path, f"layer {name} is {qw.fmt}, the plan says {self.parts['formats'][name]}")
                return None
        return out

    def save(self, weights: dict) -> None:
        """Write {layer: QuantizedWeight} (a failure to write is reported, not raised)."""
        from safetensors.torch import save

        sd = {}
        for name in self.parts["formats"]:
            for k, t in weights[name].state_dict(name + ".").items():
                sd[k] = t.detach().to("cpu").contiguous()
        data = save(sd, metadata={"fpx_arena_parts": json.dumps(self.parts, sort_keys=True)})
        path = os.path.join(self.folder, f"{self.key}.{hashlib.sha256(data).hexdigest()}.safetensors")
        tmp = f"{path}.tmp{os.getpid()}-{threading.get_ident()}"
        try:
            os.makedirs(self.folder, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
            self.tensors_path = path
        except OSError as e:
            warn(f"could not write the quantized-weight cache {path} ({e})")
            try:
                os.remove(tmp)
            except OSError:
                pass


# --- calibration rankings ----------------------------------------------------------------------
def ranking_path(checkpoint_sha: str, data_key: str) -> str:
    return os.path.join(cache_dir(), "rankings", f"{checkpoint_sha[:32]}-{data_key}.json")


def load_ranking(checkpoint_sha: str, data_key: str, layers: list[str]) -> dict | None:
    path = ranking_path(checkpoint_sha, data_key)
    if not os.path.exists(path):
        return None
    d = _read_json(path)
    ok = (isinstance(d, dict) and d.get("checkpoint_sha256") == checkpoint_sha and isinstance(d.get("eps"), dict)
          and set(d["eps"]) == set(layers) and all(isinstance(v, (int, float)) for v in d["eps"].values()))
    if not ok:
        warn(f"calibration cache {path}: unreadable or made for another model; recalibrating")
        return None
    return d


def save_ranking(checkpoint_sha: str, data_key: str, record: dict) -> None:
    try:
        _write_json(ranking_path(checkpoint_sha, data_key), dict(record, checkpoint_sha256=checkpoint_sha))
    except OSError as e:
        warn(f"could not write the calibration cache ({e})")
