"""The quality report of precision plans: perplexity and action agreement against gamma.

For one checkpoint, every configuration -- bf16, FPX at gamma = 0, 0.1, ..., 1 and uniform
fp8 / nvfp4 / mxfp4 -- is measured on

- perplexity of held-out text: agent prompts from scripted games of seeds other than the
  calibration's, plus a short English text written for this report (``HELDOUT_TEXT``);
- action agreement: the fraction of a fixed set of observations from both games (other seeds
  again) on which the LLM agent (constrained mode, the real ``LLMAgent.act``) chooses the same
  action as the bf16 model.

It also records the per-layer error table (eps of nvfp4 and fp8 on the default
calibration text; eps of nvfp4 on a second, unrelated text) and how stable the FP4 ranking is
across the two calibration sets. Each layer is quantized once per format from the checkpoint's
own weights and the configurations are switched in place, so the sweep costs one model load.
"""
from __future__ import annotations

import math
import platform
import time

import torch
from tqdm import tqdm

from ..agents.llm import LLMAgent
from ..kernels import quantize_weight
from ..llm.calibrate import eps_by_kind, layer_kind, measure_eps
from ..llm.loader import load_model, open_checkpoint
from ..llm.precision import QUANTIZED, Plan, fpx_formats, is_block_linear
from ..llm.qcache import checkpoint_sha256
from ..stats import tv_distance, wilson
from .calibration import calibration_games, game_observations, game_prompts

GAMMAS = tuple(round(0.1 * i, 1) for i in range(11))
# Held-out prose (written for this project; not from any corpus).
HELDOUT_TEXT = (
    "A match between two programs is a strange kind of race. The clock of the arena never stops, and "
    "a player that spends too long deciding finds that the moment it planned for has already passed. "
    "Fast answers are not always good answers, though: a bot that reacts instantly but reads the "
    "situation wrongly walks into every sweep and buys every top. The interesting question is where "
    "the balance lies, and it moves with the game. In a fighting game a tenth of a second decides "
    "whether a block lands in time; on a market the price has usually moved within two seconds of the "
    "news. Smaller numbers make a model faster because fewer bytes cross the memory bus for every "
    "token, but each rounding also nudges the model's output away from what it would have said.")
# A second calibration set, unrelated to the games: for the ranking-stability check.
SECOND_CALIBRATION_TEXT = (
    "The river rose through the night and by morning the lower fields were under water. Farmers "
    "moved their animals to the ridge, where the old road runs between rows of chestnut trees. "
    "Nobody in the village remembered a flood this early in the year. The schoolteacher opened the "
    "hall for families whose houses stood closest to the bank, and the baker sent bread up the hill "
    "twice before noon. In the afternoon the rain eased, the clouds broke over the hills to the west, "
    "and people began to count what had been lost: a bridge, two barns, a season's worth of seed. "
    "Engineers later measured the flow at three times its usual volume, and the council voted to "
    "rebuild the bridge higher, on stone piers, with a wider arch for the water to pass under.")


def _chunks(tokenizer, text: str, max_tokens: int) -> list[list[int]]:
    ids = tokenizer.encode(text)
    return [ids[i:i + max_tokens] for i in range(0, len(ids), max_tokens) if len(ids[i:i + max_tokens]) >= 2]


@torch.inference_mode()
def perplexity(model, sequences: list[list[int]]) -> tuple[float, float]:
    """(perplexity, mean negative log-likelihood per predicted token) over the sequences."""
    nll, n = 0.0, 0
    for ids in sequences:
        logits = model.logits(torch.tensor([ids]))[0, :-1].float()
        target = torch.tensor(ids[1:], device=logits.device)
        nll += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
        n += len(ids) - 1
    return math.exp(nll / n), nll / n


class PlanSwitcher:
    """A dense model whose block linear layers can be switched between bf16 and quantized
    weights (each quantized once, from the checkpoint's own fp32 weights)."""

    def __init__(self, model, src, formats=QUANTIZED, progress: bool = False):
        self.model = model
        self.linears = {n: m for n, m in model.linear_layers().items() if is_block_linear(n)}
        self.dense = {n: m.weight for n, m in self.linears.items()}
        self.quantized = {f: {} for f in formats}
        items = [(n, f) for n in self.linears for f in formats]
        for n, f in tqdm(items, desc="quantizing", unit="layer", leave=False, disable=not progress):
            self.quantized[f][n] = quantize_weight(src.get(n + ".weight").float().to(model.device), f)

    def apply(self, formats: dict[str, str]) -> None:
        for n, m in self.linears.items():
            f = formats.get(n, "bf16")
            if f in ("bf16", "fp32"):
                m.set_weight(self.dense[n], None, "bf16" if self.dense[n].dtype == torch.bfloat16 else "fp32",
                             self.model.dtype, self.model.device)
            else:
                m.set_quantized(self.quantized[f][n], None, self.model.dtype, self.model.device)


def observation_set(first_seed: int, per_game: int, per_match: int = 15, ticks: int = 900):
    """per_game observations of each game, at most per_match from one scripted match (so that
    they are not near-copies of each other), from seeds first_seed, first_seed + 1, ..."""
    n_games = len(calibration_games())
    out, counts = [], {}
    for seed in range(first_seed, first_seed + 2 * (per_game // per_match + 2)):  # bounded, short matches too
        if len(counts) == n_games and min(counts.values()) >= per_game:
            break
        for game, who, obs, info in game_observations(seed, ticks=ticks, per_game=min(per_match, per_game)):
            if counts.get(game.name, 0) < per_game:
                counts[game.name] = counts.get(game.name, 0) + 1
                out.append((game, who, obs, info))
    return out


def choose_actions(model, model_path: str, observations) -> tuple[list[int], list[dict[str, float]]]:
    """The LLM agent's constrained choice for each (Game, player, obs, info), and its
    distribution over the legal actions (softmax of the continuations' log-probabilities)."""
    agents, actions, dists = {}, [], []
    for game, who, obs, info in observations:
        key = (game.name, who)
        if key not in agents:
            a = LLMAgent(model_path, "bf16", device=str(model.device))
            a.model, a.cache, a.game = model, model.new_cache(1024), game
            a.reset(who)
            agents[key] = a
        actions.append(int(agents[key].act(obs, info)))
        names = list(agents[key].last_scores)
        p = torch.tensor([agents[key].last_scores[n] for n in names], dtype=torch.float64).softmax(0)
        dists.append(dict(zip(names, p.tolist())))
    return actions, dists


def choice_margins(dists: list[dict[str, float]]) -> dict:
    """How decided the model is: the probability gap between its first and second choice
    (a small gap is flipped by a small perturbation, whatever the format)."""
    gaps = []
    for d in dists:
        ranked = sorted(d.values(), reverse=True) + [0.0]
        gaps.append(ranked[0] - ranked[1])
    gaps.sort()
    if not gaps:
        return {}
    return {"median": gaps[len(gaps) // 2], "share_below_0.05": sum(g < 0.05 for g in gaps) / len(gaps),
            "share_below_0.2": sum(g < 0.2 for g in gaps) / len(gaps)}


def spearman(a: dict[str, float], b: dict[str, float]) -> float:
    names = sorted(a)
    ra = {n: i for i, n in enumerate(sorted(names, key=lambda n: a[n]))}
    rb = {n: i for i, n in enumerate(sorted(names, key=lambda n: b[n]))}
    n = len(names)
    d2 = sum((ra[x] - rb[x]) ** 2 for x in names)
    return 1 - 6 * d2 / (n * (n * n - 1)) if n > 1 else 1.0


def quality_report(source: str, gammas=GAMMAS, uniform=QUANTIZED, obs_per_game: int = 150,
                   calib_seeds=(0,), heldout_seeds=(100,), max_tokens: int = 320,
                   progress: bool = True, device: str = "cpu") -> dict:
    t_all = time.perf_counter()
    model = load_model(source, "bf16", device)
    src = open_checkpoint(source)
    tok = model.tokenizer
    shapes = {n: (m.out_features, m.in_features) for n, m in model.linear_layers().items() if is_block_linear(n)}

    # the per-layer error table on two calibration sets
    set_a = [s for s in (tok.encode(t)[:max_tokens] for t in game_prompts(tok, calib_seeds)) if len(s) >= 2]
    set_b = _chunks(tok, SECOND_CALIBRATION_TEXT * 3, max_tokens)
    eps_a = measure_eps(model, set_a, ("nvfp4", "fp8"), progress=progress)
    eps_b = measure_eps(model, set_b, ("nvfp4",), progress=progress)["nvfp4"]
    ranking = eps_a["nvfp4"]
    overlap = {}
    for g in (0.1, 0.3, 0.5):
        fa = {n for n, f in fpx_formats(ranking, g).items() if f == "nvfp4"}
        fb = {n for n, f in fpx_formats(eps_b, g).items() if f == "nvfp4"}
        overlap[str(g)] = len(fa & fb) / max(1, len(fa))

    # held-out text and the fixed observations
    heldout = [tok.encode(t)[:max_tokens] for t in game_prompts(tok, heldout_seeds, per_game=1)]
    heldout += _chunks(tok, HELDOUT_TEXT, max_tokens)
    observations = observation_set(heldout_seeds[0] + 1, obs_per_game)
    games_of = [g.name for g, *_ in observations]

    switcher = PlanSwitcher(model, src, tuple(dict.fromkeys(("fp8", "nvfp4") + tuple(uniform))), progress=progress)
    configs = [("bf16", {})] + [(f"fpx:{g}", fpx_formats(ranking, g)) for g in gammas]
    configs += [(f, {n: f for n in shapes}) for f in uniform]
    rows, base = [], None
    for name, formats in tqdm(configs, desc="precisions", unit="plan", disable=not progress):
        t0 = time.perf_counter()
        switcher.apply(formats)
        ppl, nll = perplexity(model, heldout)
        actions, dists = choose_actions(model, source, observations)
        if base is None:
            base = actions, dists
        same = [a == b for a, b in zip(actions, base[0])]
        tv = [tv_distance(p, q) for p, q in zip(dists, base[1])]
        plan = Plan(name, torch.bfloat16, {n: formats.get(n, "bf16") for n in shapes})
        rows.append({"precision": name, "gamma": float(name[4:]) if name.startswith("fpx:") else None,
                     "n_fp4": plan.count("nvfp4") + plan.count("mxfp4"), "bits": plan.bits(shapes),
                     "perplexity": ppl, "nll": nll, "agreement": sum(same) / len(same),
                     "agreement_ci95": wilson(sum(same), len(same)),
                     "agreement_by_game": {g: sum(x for x, gg in zip(same, games_of) if gg == g) / games_of.count(g)
                                           for g in sorted(set(games_of))},
                     "mean_tv_distance": sum(tv) / len(tv), "actions": actions,
                     "seconds": time.perf_counter() - t0})
    switcher.apply({})
    # back to bf16 after every plan: the same choices again (the switching is clean and the
    # agent deterministic, so any disagreement above is the formats' doing)
    repeat_actions, _ = choose_actions(model, source, observations)

    kinds = eps_by_kind(ranking)
    return {
        "model": source, "checkpoint_sha256": checkpoint_sha256(src.path),
        "device": (f"{device} ({torch.cuda.get_device_name(model.device)})" if model.device.type == "cuda" else
                   f"{device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"),
        "n_linear": len(shapes),
        "calibration": {"set_a": f"agent prompts from scripted games, seeds {list(calib_seeds)}",
                        "set_a_sequences": len(set_a), "set_a_tokens": sum(map(len, set_a)),
                        "set_b": "an English paragraph about a flood (SECOND_CALIBRATION_TEXT)",
                        "set_b_tokens": sum(map(len, set_b))},
        "heldout": {"sequences": len(heldout), "tokens": sum(map(len, heldout)),
                    "what": f"agent prompts of seeds {list(heldout_seeds)} + HELDOUT_TEXT"},
        "observations": {"n": len(observations), "by_game": {g: games_of.count(g) for g in sorted(set(games_of))},
                         "first_seed": heldout_seeds[0] + 1,
                         "what": "states from scripted matches (at most 15 per match), the LLM agent in constrained mode"},
        "bf16_repeat_agreement": sum(a == b for a, b in zip(repeat_actions, base[0])) / len(observations),
        "bf16_choice_margin": choice_margins(base[1]),
        "eps": {n: {"nvfp4": eps_a["nvfp4"][n], "fp8": eps_a["fp8"][n],
                    "nvfp4_set_b": eps_b[n], "kind": layer_kind(n)} for n in shapes},
        "eps_nvfp4_by_kind": kinds,
        "ranking_stability": {"spearman_set_a_vs_b": spearman(ranking, eps_b), "fp4_set_overlap": overlap},
        "configs": rows,
        "seconds": time.perf_counter() - t_all,
    }


def plot(report: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["configs"] if r["gamma"] is not None]
    flat = {r["precision"]: r for r in report["configs"] if r["gamma"] is None}
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.2))
    g = [r["gamma"] for r in rows]
    panels = (("perplexity", "held-out perplexity"), ("agreement", "action agreement with bf16 (95% CI)"),
              ("mean_tv_distance", "mean TV distance of the action distribution to bf16"))
    for ax, (key, label) in zip(axes, panels):
        if key == "agreement":
            lo = [max(0.0, r[key] - r["agreement_ci95"][0]) for r in rows]
            hi = [max(0.0, r["agreement_ci95"][1] - r[key]) for r in rows]
            ax.errorbar(g, [r[key] for r in rows], yerr=[lo, hi], fmt="o-", capsize=3, label="fpx:gamma (FP4 = lowest eps)")
        else:
            ax.plot(g, [r[key] for r in rows], "o-", label="fpx:gamma (FP4 = lowest eps)")
        for name, style in (("bf16", "k--"), ("fp8", "g:"), ("nvfp4", "r:"), ("mxfp4", "m-.")):
            if name in flat:
                ax.axhline(flat[name][key], linestyle=style[1:], color=style[0], label=name)
        ax.set_xlabel("gamma (fraction of linear layers in FP4)")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    ax = axes[3]
    kinds = sorted({v["kind"] for v in report["eps"].values()})
    for k in kinds:
        items = [(int(n.split(".")[1]), v["nvfp4"]) for n, v in report["eps"].items() if v["kind"] == k and n.startswith("layers.")]
        items.sort()
        ax.semilogy([i for i, _ in items], [e for _, e in items], ".-", label=k)
    ax.set_xlabel("block")
    ax.set_ylabel("eps_l (nvfp4, relative squared output error)")
    ax.legend(fontsize=8, ncol=2)
    fig.suptitle(f"{report['model']}: FPX quality against gamma ({report['device']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
