"""Fixtures several test modules share."""
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# `python -m pytest` run at the repository root puts the root on sys.path, where the folders
# `kernels/`, `agents/` and `games/` (installed as fpx_arena.kernels, ...) would shadow real
# top-level packages: transformers >= 5 imports Hugging Face's `kernels` and found ours. The
# package is installed, so the tests import it from there and never from the bare folders.
# Where it is not installed (a GPU machine running a copied checkout with PYTHONPATH=.), the
# root stays: fpx_arena maps the folders itself and nothing there imports HF `kernels`.
_ROOT = Path(__file__).resolve().parent.parent
try:
    version("fpx-arena")
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT]
except PackageNotFoundError:
    pass

import pytest


@pytest.fixture(scope="module")
def isolated_fpx_cache(tmp_path_factory):
    """Point the calibration and quantized-weight caches at a fresh folder for one module, so
    tests neither read nor write the user's ~/.cache/fpx-arena."""
    old = os.environ.get("FPX_ARENA_CACHE")
    path = str(tmp_path_factory.mktemp("fpx-cache"))
    os.environ["FPX_ARENA_CACHE"] = path
    yield path
    if old is None:
        os.environ.pop("FPX_ARENA_CACHE", None)
    else:
        os.environ["FPX_ARENA_CACHE"] = old
