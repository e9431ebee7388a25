"""Precision plans: precision strings, FPX calibration (exact FP4 count, lowest eps), the logit
error an FPX model may have, plan files and their model identity."""
import json

import pytest
import torch
import torch.nn.functional as F

from fpx_arena.errors import UserError
from fpx_arena.kernels import qlinear, quantize_weight
from fpx_arena.llm import load_model, open_checkpoint
from fpx_arena.agents.llm import PromptBuilder
from fpx_arena.llm.calibrate import calibration_ids, default_texts, measure_eps, ranking
from fpx_arena.llm.precision import bits_with_scales, make_plan
from fpx_arena.llm.qcache import model_identity
from fpx_arena.precision_apps.calibration import game_observations, game_prompts
from fpx_arena.precision_apps.quality import PlanSwitcher
from synthetic_checkpoints import build_hf_checkpoint

pytest.importorskip("transformers")
TEXT = "The fighter moves left and right, punches, kicks and blocks. Price 101.25, cash 1000, position 0."


pytestmark = pytest.mark.usefixtures("isolated_fpx_cache")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("tiny-llama"))
    build_hf_checkpoint(folder, arch="llama", seed=5)
    return folder


@pytest.fixture(scope="module")
def dense(tiny):
    return load_model(tiny, "bf16", "cpu")


def block_names(model):
    return [n for n in model.linear_layers() if n != "lm_head"]


def test_precision_strings():
    names = ["layers.0.attn.q_proj", "layers.0.mlp.down_proj", "lm_head"]
    assert make_plan("fp4", names).formats == make_plan("nvfp4", names).formats
    p = make_plan("fp8", names)
    assert p.formats == {"layers.0.attn.q_proj": "fp8", "layers.0.mlp.down_proj": "fp8", "lm_head": "bf16"}
    assert p.compute_dtype == torch.bfloat16
    assert make_plan("mxfp4,head=fp8", names).formats["lm_head"] == "fp8"
    assert make_plan("fp32", names).compute_dtype == torch.float32
    make_plan("fpx:0.3", [])  # only the string is checked (agents do this before loading)
    for bad, words in (("adaptive", "chosen per decision by an agent"), ("fpx:1.5", "[0, 1]"), ("fpx:abc", "number"),
                       ("int3", "unknown precision"), ("fp8,tail=fp8", "head=<format>"),
                       ("fp8,head=int2", "unknown"), ("missing/plan.json", "no such file")):
        with pytest.raises(UserError, match=None) as e:
            make_plan(bad, names)
        assert words in str(e.value) and "\n" not in str(e.value), (bad, str(e.value))


def test_eps_is_the_relative_output_error_of_the_layer(dense):
    """eps_l from the hooks equals ||A(bf16) - A(fp4)||^2 / ||A(bf16)||^2 computed by hand from
    the layer's input in a bf16 forward, with the model's own Linear weight in nvfp4."""
    ids = dense.tokenizer.encode(TEXT)
    name = "layers.1.mlp.up_proj"
    layer = dense.get_submodule(name)
    seen = []
    h = layer.register_forward_hook(lambda m, i, o: seen.append(i[0].detach().clone()))
    dense.logits(torch.tensor([ids]))
    h.remove()
    x = seen[0].reshape(-1, layer.in_features)
    ref = F.linear(x.float(), layer.weight.float())
    fp4 = qlinear(x.float(), quantize_weight(layer.weight.float(), "nvfp4"))
    by_hand = float((ref - fp4).pow(2).sum() / ref.pow(2).sum())
    eps = measure_eps(dense, [ids], ("nvfp4", "fp8"))
    assert eps["nvfp4"][name] == pytest.approx(by_hand, rel=1e-3)
    assert 0 < eps["fp8"][name] < eps["nvfp4"][name]  # fp8 keeps 3 mantissa bits, e2m1 one


@pytest.mark.parametrize("gamma", [0.0, 0.3, 0.5, 1.0])
def test_fpx_plan_puts_exactly_round_gamma_L_lowest_eps_layers_in_fp4(tiny, dense, gamma):
    model = load_model(tiny, f"fpx:{gamma}", "cpu")
    plan = model.plan
    L = len(block_names(dense))
    assert L == 14 and set(plan.eps) == set(block_names(dense))
    fp4 = [n for n, f in plan.formats.items() if f == "nvfp4"]
    fp8 = [n for n, f in plan.formats.items() if f == "fp8"]
    assert len(fp4) == round(gamma * L) and len(fp4) + len(fp8) == L
    assert plan.formats["lm_head"] == "bf16"
    if fp4 and fp8:
        assert max(plan.eps[n] for n in fp4) <= min(plan.eps[n] for n in fp8)
    # the layers really run in those formats
    for n, m in model.linear_layers().items():
        assert (m.qweight.fmt if m.qweight is not None else "bf16") == plan.formats[n]
    # nominal 8 - 4 gamma by layer count; with scales per weight: nvfp4 4.5, fp8 8 + 32/K
    shapes = {n: (m.out_features, m.in_features) for n, m in model.linear_layers().items()}
    bits = plan.bits(shapes)
    assert bits["by_layer_count"] == pytest.approx(8 - 4 * len(fp4) / L)
    total = sum(shapes[n][0] * shapes[n][1] for n in fp4 + fp8)
    exact = sum(bits_with_scales(plan.formats[n], *shapes[n]) * shapes[n][0] * shapes[n][1] for n in fp4 + fp8) / total
    assert bits["per_weight_with_scales"] == pytest.approx(exact)
    assert bits["per_weight_nominal"] < bits["per_weight_with_scales"] < bits["per_weight_nominal"] + 0.6


def test_ranking_is_the_measured_eps_on_the_default_data(tiny, dense):
    rec = ranking(tiny)  # cached by the fpx loads above; measured again here from scratch
    fresh = measure_eps(dense, calibration_ids(dense.tokenizer, None), ("nvfp4",))["nvfp4"]
    assert rec["data"] == "games-v1" and rec["tokens"] > 1000
    for n in fresh:
        assert rec["eps"][n] == pytest.approx(fresh[n], rel=1e-6)


def test_the_shipped_calibration_text_is_the_agents_prompts_on_the_games_today(dense):
    """The engine calibrates on a shipped recording, not on play: it must still be, text for text,
    the prompts the LLM agent builds on each game's calibration match (seed 0) in this model's
    chat template. A change to a prompt or a bot fails here instead of silently moving rankings
    (then: write_default_text() and bump calibrate.DEFAULT_DATA)."""
    tok = dense.tokenizer
    played = [PromptBuilder(game, tok, who).build(obs, info).text for game, who, obs, info in game_observations(0)]
    shipped = default_texts(tok)
    assert len(shipped) == 8 and {g.name for g, *_ in game_observations(0)} == {"fighter", "market"}
    assert shipped == played == game_prompts(tok, (0,))


def test_fpx_logits_stay_within_the_error_the_layers_predict(tiny, dense):
    """Bound: to first order, the rounding errors of different layers add independently, so
    the relative logit error of a plan is E^2 ~= sum_l e_l^2, e_l the relative logit error when
    layer l alone is in its planned format (measured, as the formats predict it). We require
    0.5 <= E / sqrt(sum e_l^2) <= 1.5, and fp8 < fpx:0.5 < nvfp4."""
    from fpx_arena.llm import open_checkpoint

    ids = torch.tensor([dense.tokenizer.encode(TEXT * 2)])
    z0 = dense.logits(ids)
    rel = lambda z: float((z - z0).norm() / z0.norm())  # noqa: E731
    plan = load_model(tiny, "fpx:0.5", "cpu").plan
    sw = PlanSwitcher(dense, open_checkpoint(tiny), ("fp8", "nvfp4"))
    try:
        single = {}
        for n in sw.linears:
            sw.apply({n: plan.formats[n]})
            single[n] = rel(dense.logits(ids))
        sw.apply({n: plan.formats[n] for n in sw.linears})
        e_plan = rel(dense.logits(ids))
        sw.apply({n: "fp8" for n in sw.linears})
        e_fp8 = rel(dense.logits(ids))
        sw.apply({n: "nvfp4" for n in sw.linears})
        e_fp4 = rel(dense.logits(ids))
    finally:
        sw.apply({})
    predicted = sum(e * e for e in single.values()) ** 0.5
    assert 0.5 * predicted <= e_plan <= 1.5 * predicted, (e_plan, predicted)
    assert e_fp8 < e_plan < e_fp4
    # and the loaded fpx:0.5 model (quantized by load_model, through the cache) agrees
    z = load_model(tiny, "fpx:0.5", "cpu").logits(ids)
    assert rel(z) == pytest.approx(e_plan, rel=0.05)


def test_plan_file_round_trip(tiny, tmp_path):
    m = load_model(tiny, "fpx:0.3", "cpu")
    path = str(tmp_path / "plan.json")
    m.plan.save(path, {n: (x.out_features, x.in_features) for n, x in m.linear_layers().items()})
    d = json.load(open(path))
    assert d["model"]["checkpoint_sha256"] and d["model"]["layers_sha256"] and d["counts"]["nvfp4"] == 4
    m2 = load_model(tiny, path, "cpu")
    assert m2.plan.formats == m.plan.formats and m2.plan.eps == pytest.approx(m.plan.eps)
    ids = torch.tensor([m.tokenizer.encode(TEXT)])
    assert torch.equal(m.logits(ids), m2.logits(ids))
    # a hand-edited plan is honoured, layer by layer
    d["formats"]["layers.0.attn.q_proj"] = "mxfp4"
    json.dump(d, open(path, "w"))
    assert load_model(tiny, path, "cpu").layers[0].attn.q_proj.qweight.fmt == "mxfp4"


def test_plan_for_another_model_is_refused_in_one_line(tiny, tmp_path):
    m = load_model(tiny, "fpx:0.3", "cpu")
    path = str(tmp_path / "plan.json")
    m.plan.save(path)
    other = str(tmp_path / "other")
    build_hf_checkpoint(other, arch="llama", seed=6)  # same shapes, other weights
    with pytest.raises(UserError) as e:
        load_model(other, path, "cpu")
    assert "is for another model" in str(e.value) and "checkpoint" in str(e.value) and "\n" not in str(e.value)
    deeper = str(tmp_path / "deeper")
    build_hf_checkpoint(deeper, arch="llama", seed=5, num_hidden_layers=3)
    with pytest.raises(UserError, match="is for another model: its layer list"):
        load_model(deeper, path, "cpu")
    json.dump({"format": "fpx-arena-plan", "version": 1, "formats": {}}, open(path, "w"))
    with pytest.raises(UserError, match="does not say which model"):
        load_model(tiny, path, "cpu")
    open(path, "w").write("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_model(tiny, path, "cpu")


def test_quality_report_from_the_command_line(tiny, tmp_path, capsys):
    """`fpx-arena quality` on a small model: one row per plan, bf16 agrees with itself (also
    when it is switched back after every plan), FP4 everywhere is at least as far from bf16 as
    FP8, agreement comes with its interval, and the plot is written."""
    from fpx_arena.cli import main

    out, png = tmp_path / "q.json", tmp_path / "q.png"
    assert main(["quality", tiny, "--gammas", "0,1", "--uniform", "fp8,mxfp4", "--obs", "8",
                 "--max-tokens", "64", "--out", str(out), "--plot", str(png)]) == 0
    rep = json.loads(out.read_text())
    rows = {r["precision"]: r for r in rep["configs"]}
    assert list(rows) == ["bf16", "fpx:0.0", "fpx:1.0", "fp8", "mxfp4"]
    assert rep["observations"]["by_game"] == {"fighter": 8, "market": 8}
    assert rows["bf16"]["agreement"] == 1.0 and rows["bf16"]["mean_tv_distance"] == 0.0
    assert rep["bf16_repeat_agreement"] == 1.0
    assert rows["fpx:1.0"]["n_fp4"] == rep["n_linear"] and rows["fpx:0.0"]["n_fp4"] == 0
    assert rows["fpx:0.0"]["perplexity"] == pytest.approx(rows["fp8"]["perplexity"])  # the same plan
    assert rows["mxfp4"]["mean_tv_distance"] >= rows["fp8"]["mean_tv_distance"] > 0
    for r in rows.values():
        lo, hi = r["agreement_ci95"]
        assert 0 <= lo <= r["agreement"] <= hi <= 1
    assert png.stat().st_size > 10_000
    assert "bf16 again after all plans agrees with itself on 100.0%;" in capsys.readouterr().out
    assert 0 <= rep["bf16_choice_margin"]["median"] <= 1
    assert main(["quality", tiny, "--gammas", "0,2"]) == 2


def test_plan_file_in_fp32_keeps_bf16_layers_bf16(tiny, tmp_path):
    """A plan file may compute in fp32 while some layers stay bf16 (the lm_head by default):
    those layers multiply their bf16-rounded weights in fp32 (this is how bench/precision_gpu.py
    measures a plan's rounding floor)."""
    m = load_model(tiny, "fp8", "cpu")
    path = str(tmp_path / "plan32.json")
    m.plan.save(path)
    d = json.load(open(path))
    d["compute_dtype"] = "fp32"
    d["model"] = model_identity(open_checkpoint(tiny), {n: (x.out_features, x.in_features)
                                                        for n, x in m.linear_layers().items()})
    json.dump(d, open(path, "w"))
    m32 = load_model(tiny, path, "cpu")
    assert m32.dtype == torch.float32 and m32.lm_head.fmt == "bf16"
    w = m32.lm_head.weight
    assert w.dtype == torch.float32 and torch.equal(w, w.bfloat16().float())
    ids = torch.tensor([m.tokenizer.encode(TEXT)])
    z32, z16 = m32.logits(ids), m.logits(ids)
    assert z32.dtype == torch.float32 and torch.isfinite(z32).all()
    assert F.cosine_similarity(z32.flatten(), z16.float().flatten(), dim=0) > 0.99
