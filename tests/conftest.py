"""Fixtures several test modules share."""
import os

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
