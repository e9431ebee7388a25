"""`fpx-arena models` and `fpx-arena prompt`."""
import json

import pytest

from fpx_arena.cli import main
from fpx_arena.llm.registry import smollm2_path
from synthetic_checkpoints import build_hf_checkpoint

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    build_hf_checkpoint(str(root / "tiny-qwen3"), arch="qwen3", seed=5)
    return root


def test_models_lists_found_checkpoints(models_dir, monkeypatch, capsys):
    monkeypatch.setenv("FPX_ARENA_MODELS", str(models_dir))
    assert main(["models", "--json", "--details"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    tiny = rows["tiny-qwen3"]
    assert tiny["format"] == "hf" and tiny["arch"] == "qwen3" and tiny["layers"] == 2
    assert tiny["origin"] == "$FPX_ARENA_MODELS"
    if smollm2_path():
        assert rows["smollm2-135m"]["path"] == smollm2_path() and rows["smollm2-135m"]["format"] == "gguf"
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:4] == ["NAME", "ORIGIN", "FORMAT", "SIZE"]
    assert "tiny-qwen3" in table


def test_prompt_shows_prompt_and_choice(models_dir, monkeypatch, capsys):
    monkeypatch.setenv("FPX_ARENA_MODELS", str(models_dir))
    assert main(["prompt", "tiny-qwen3", "--game", "fighter", "--precision", "fp32", "--ticks", "5",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "<|im_start|>system\nYou control a fighter" in out
    assert "State: gap " in out and "<|im_start|>assistant" in out
    chosen = [line for line in out.splitlines() if line.startswith("chosen action:")]
    assert len(chosen) == 1 and chosen[0].split()[2] in ("wait", "forward", "back", "jump", "leap", "crouch",
                                                          "block", "lowblock", "jab", "kick", "sweep", "fireball")
    assert main(["prompt", "tiny-qwen3", "--game", "fighter", "--precision", "fp32", "--mode", "free",
                 "--max-tokens", "3", "--device", "cpu"]) == 0
    assert "generated (3 tokens at most):" in capsys.readouterr().out


def test_prompt_bad_input(models_dir, monkeypatch, capsys):
    monkeypatch.setenv("FPX_ARENA_MODELS", str(models_dir))
    assert main(["prompt", "tiny-qwen3", "--game", "chess"]) == 2
    assert "unknown game 'chess'" in capsys.readouterr().err
    assert main(["prompt", "tiny-qwen3", "--agent", "p7", "--device", "cpu"]) == 2
    assert "no player 'p7'" in capsys.readouterr().err
