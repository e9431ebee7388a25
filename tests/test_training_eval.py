"""`fpx-arena eval`: the intervals it reports, its JSON, and its errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fpx_arena.cli import main
from fpx_arena.policy.evaluate import bootstrap_mean, wilson


def test_wilson_interval_matches_known_values():
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson(100, 100)
    assert hi == 1.0 and lo == pytest.approx(0.9630, abs=1e-4)


def test_bootstrap_interval_covers_the_mean_at_about_the_nominal_rate():
    rng = np.random.default_rng(0)
    covered = 0
    for i in range(200):
        xs = rng.normal(0.01, 0.005, 50)
        mean, lo, hi = bootstrap_mean(xs, resamples=2000, seed=i)
        assert lo <= mean <= hi
        covered += lo <= 0.01 <= hi
    assert 0.88 <= covered / 200 <= 0.99
    assert bootstrap_mean([1.0, 2.0, 3.0], seed=4) == bootstrap_mean([1.0, 2.0, 3.0], seed=4)


def test_eval_rejects_unknown_precision_model_and_opponent(capsys):
    assert main(["eval", "arena-tiny", "--precisions", "bf16,fp9"]) == 2
    assert "unknown precision 'fp9'" in capsys.readouterr().err
    assert main(["eval", "no-such-model"]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert main(["eval", "arena-tiny", "--opponents", "fighter/nobody"]) == 2
    assert "unknown opponent" in capsys.readouterr().err


def test_eval_writes_its_tables_as_json(tmp_path, capsys):
    out = tmp_path / "eval.json"
    rc = main(["eval", "arena-tiny", "--matches", "1", "--clocks", "lockstep", "--opponents", "random",
               "--agreement-episodes", "1", "--agreement-limit", "40", "--out", str(out), "--quiet"])
    assert rc == 0
    rep = json.loads(out.read_text())
    a = rep["agreement"]["bf16"]
    assert set(a) == {"fighter", "market"} and all(a[g]["decisions"] == 40 for g in a)
    f = rep["results"]["bf16"]["lockstep"]["fighter"]["random"]
    assert f["matches"] == 1 and f["wins"] + f["draws"] + f["losses"] == 1
    assert f["win_rate_ci95"][0] <= f["win_rate"] <= f["win_rate_ci95"][1]
    m = rep["results"]["bf16"]["lockstep"]["market"]["random"]
    assert "daily_yield" in m and set(rep["baselines"]["market"]) == {"random", "market/informed"}
    printed = capsys.readouterr().out
    assert "fighter @bf16 lockstep" in printed and "market @bf16 lockstep" in printed
