"""The on-disk cache of quantized weights and calibration rankings, and model identities.

Layout under ``cache_dir()`` ($FPX_ARENA_CACHE, else ~/.cache/fpx-arena):

- ``hashes.json``: checkpoint content hashes, memoized by (path, size, mtime) so that a 16 GB
  checkpoint is read through once, not at every start.
- ``rankings/<checkpoint sha>-<data>.json``: the per-layer FP4 errors of a calibration.
- ``qweights/<key>.safetensors`` + ``<key>.json``: the quantized weights of one (checkpoint,
  plan) pair; the key hashes both. The JSON holds the key's parts, the file's size and sha256.
  A file that is missing a part, truncated, altered or made for another key is reported in
  one line on stderr (logger ``fpx_arena.cache``) and rebuilt: it is never used silently.

``FPX_ARENA_QCACHE=0`` turns the quantized-weight cache off (rankings are still cached).
"""
from __future__ import annotations

import hashlib
import json
import os
import logging
import threading

CACHE_VERSION = 1
_lock = threading.Lock()


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
    """Content hash of a checkpoint (sha256 over its files' names and bytes), memoized on disk
    by each file's path, size and modification time."""
    files = checkpoint_files(path)
    stamp = [[os.path.abspath(f), os.path.getsize(f), os.stat(f).st_mtime_ns] for f in files]
    memo_path = os.path.join(cache_dir(), "hashes.json")
    key = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()
    with _lock:
        memo = _read_json(memo_path) or {}
        if isinstance(memo, dict) and key in memo:
            return memo[key]
    h = hashlib.sha256()
    for f in files:
        h.update(os.path.basename(f).encode() + b"\0" + file_sha256(f).encode())
    digest = h.hexdigest()
    with _lock:
        memo = _read_json(memo_path) or {}
        if not isinstance(memo, dict) or len(memo) > 1000:
            memo = {}
        memo[key] = digest
        try:
            _write_json(memo_path, memo)
        except OSError:
            pass  # a read-only cache only costs rehashing
    return digest


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
    or None (absent, or unusable: reported and removed); ``save(weights)`` writes it."""

    def __init__(self, checkpoint_sha: str, formats: dict[str, str], root: str | None = None):
        from ..kernels import LAYOUT

        self.parts = {"version": CACHE_VERSION, "layout": LAYOUT, "checkpoint_sha256": checkpoint_sha,
                      "formats": {n: f for n, f in sorted(formats.items()) if f in ("fp8", "nvfp4", "mxfp4")}}
        self.key = hashlib.sha256(json.dumps(self.parts, sort_keys=True).encode()).hexdigest()[:32]
        folder = os.path.join(root or cache_dir(), "qweights")
        self.tensors_path = os.path.join(folder, self.key + ".safetensors")
        self.meta_path = os.path.join(folder, self.key + ".json")

    def _reject(self, why: str) -> None:
        warn(f"quantized-weight cache {self.tensors_path}: {why}; rebuilding it")
        for p in (self.tensors_path, self.meta_path):
            try:
                os.remove(p)
            except OSError:
                pass

    def load(self, device="cpu"):
        from safetensors.torch import load as load_bytes

        from ..kernels import QuantizedWeight

        have_t, have_m = os.path.isfile(self.tensors_path), os.path.isfile(self.meta_path)
        if not have_t and not have_m:
            return None
        if not (have_t and have_m):
            self._reject(f"its {'metadata' if have_t else 'tensor file'} is missing")
            return None
        meta = _read_json(self.meta_path)
        if not isinstance(meta, dict) or meta.get("key") != self.key or meta.get("parts") != self.parts:
            self._reject("its metadata does not match this checkpoint and plan")
            return None
        # read into memory, check and parse the same bytes: nothing is memory-mapped, so a file
        # changed later cannot corrupt (or crash) a model that is already loaded
        with open(self.tensors_path, "rb") as f:
            data = f.read()
        if len(data) != meta.get("bytes"):
            self._reject(f"size {len(data)} bytes, expected {meta.get('bytes')} (truncated or overwritten)")
            return None
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            self._reject("checksum mismatch (the file is corrupt)")
            return None
        try:
            sd = {k: v.to(device) for k, v in load_bytes(data).items()}
            out = {name: QuantizedWeight.from_state_dict(sd, name + ".") for name in self.parts["formats"]}
        except Exception as e:  # safetensors and from_state_dict raise their own types
            self._reject(f"unreadable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
            return None
        for name, qw in out.items():
            if qw.fmt != self.parts["formats"][name]:
                self._reject(f"layer {name} is {qw.fmt}, the plan says {self.parts['formats'][name]}")
                return None
        return out

    def save(self, weights: dict) -> None:
        """Write {layer: QuantizedWeight} (a failure to write is reported, not raised)."""
        from safetensors.torch import save_file

        sd = {}
        for name in self.parts["formats"]:
            for k, t in weights[name].state_dict(name + ".").items():
                sd[k] = t.detach().to("cpu").contiguous()
        tmp = f"{self.tensors_path}.tmp{os.getpid()}-{threading.get_ident()}"
        try:
            os.makedirs(os.path.dirname(self.tensors_path), exist_ok=True)
            save_file(sd, tmp, metadata={"fpx_arena_key": self.key})
            meta = {"key": self.key, "parts": self.parts, "bytes": os.path.getsize(tmp), "sha256": file_sha256(tmp)}
            os.replace(tmp, self.tensors_path)
            _write_json(self.meta_path, meta)
        except OSError as e:
            warn(f"could not write the quantized-weight cache {self.tensors_path} ({e})")
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
