"""MODEL_CARD.md of a trained policy, written from its training.json and evaluation JSON files
(every figure in the card comes from those files, none is typed in by hand).

  python -m fpx_arena.policy.card fpx_arena/models/arena-small \\
      --eval "bench/results/eval-arena-small.json::Lockstep" [--eval ...] [--note "text"]
"""
from __future__ import annotations

import argparse
import json
import os

from .. import games
from ..games import WIN_RATE


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _ci(ci) -> str:
    return f"{100 * ci[0]:.1f}-{100 * ci[1]:.1f}%"


def _yield_ci(ci) -> str:
    return f"{100 * ci[0]:+.3f}% .. {100 * ci[1]:+.3f}%"


def _match_table(score: str, per_opp: dict) -> list[str]:
    """One game's match results against each opponent, as its Setups.score measures them."""
    out = []
    if score == WIN_RATE:
        out += ["| opponent | matches | W-D-L | win rate | 95% CI (Wilson) | score (draw = 1/2) | mean decision ms | missed ticks |",
                "|---|---|---|---|---|---|---|---|"]
        for opp, s in per_opp.items():
            ms = s.get("mean_decision_ms")
            out.append(f"| {opp} | {s['matches']} | {s['wins']}-{s['draws']}-{s['losses']} | "
                       f"{_pct(s['win_rate'])} | {_ci(s['win_rate_ci95'])} | {_pct(s['score'])} | "
                       f"{'-' if ms is None else f'{ms:.2f}'} | {_pct(s['missed_tick_rate'])} |")
        return out
    out += [f"| opponent | days | {score.replace('_', ' ')} (mean) | 95% CI (bootstrap) | mean decision ms | missed ticks |",
            "|---|---|---|---|---|---|"]
    for opp, s in per_opp.items():
        ms = s.get("mean_decision_ms")
        out.append(f"| {opp} | {s['matches']} | {100 * s[score]:+.3f}% | "
                   f"{_yield_ci(s[score + '_ci95'])} | {'-' if ms is None else f'{ms:.2f}'} | "
                   f"{_pct(s['missed_tick_rate'])} |")
    return out


def eval_tables(rep: dict, title: str = "") -> list[str]:
    """Markdown tables of one evaluation report (see policy.evaluate)."""
    out = ([f"### {title}", ""] if title else []) + [f"Evaluation command: `{rep.get('command', '')}` on {rep['cpu']} "
           f"({rep['workers']} worker process(es) x {rep['torch_threads_per_worker']} torch thread(s)); "
           f"{rep['seconds']:.0f} s.", ""]
    if rep.get("agreement"):
        ref = rep["precisions"][0]
        out += ["Action agreement with the expert (held-out decisions; source: "
                + "; ".join(f"{g}: {s}" for g, s in rep.get("agreement_source", {}).items()) + ")", "",
                f"| precision | game | agreement | 95% CI (Wilson) | balanced (mean per-action recall) | "
                f"same action as {ref} | mean TV distance to {ref} | decision ms p50 / p99 | decisions |",
                "|---|---|---|---|---|---|---|---|---|"]
        for p, per_game in rep["agreement"].items():
            for g, a in per_game.items():
                vs = a.get("vs_" + ref)
                same = f"{_pct(vs['same_action'])}" if vs else "(reference)"
                tv = f"{vs['mean_tv_distance']:.2e}" if vs else "-"
                out.append(f"| {p} | {g} | {_pct(a['agreement'])} | {_ci(a['agreement_ci95'])} | "
                           f"{_pct(a['balanced_agreement'])} | {same} | {tv} | "
                           f"{a['decision_ms_p50']:.2f} / {a['decision_ms_p99']:.2f} | {a['decisions']} |")
        out.append("")
    for p, per_clock in rep.get("results", {}).items():
        for clock, per_game in per_clock.items():
            for g, per_opp in per_game.items():
                out += [f"{g}, `llm:{os.path.basename(rep['model'])}@{p}`, clock `{clock}`:", ""]
                out += _match_table(games.get(g).setups.score, per_opp)
                out.append("")
    for g, per_base in rep.get("baselines", {}).items():
        score = games.get(g).setups.score
        for base, per_opp in per_base.items():
            out += [f"Baseline: `{base}` in the same seats and seeds ({g}, lockstep):", ""]
            if score == WIN_RATE:
                out += ["| opponent | win rate | 95% CI |", "|---|---|---|"]
                out += [f"| {o} | {_pct(s['win_rate'])} | {_ci(s['win_rate_ci95'])} |" for o, s in per_opp.items()]
            else:
                out += [f"| opponent | {score.replace('_', ' ')} | 95% CI |", "|---|---|---|"]
                out += [f"| {o} | {100 * s[score]:+.3f}% | {_yield_ci(s[score + '_ci95'])} |"
                        for o, s in per_opp.items()]
            out.append("")
    return out


def render(model_dir: str, evals: list[tuple[str, dict]], notes: list[str]) -> str:
    with open(os.path.join(model_dir, "training.json"), encoding="utf-8") as f:
        t = json.load(f)
    c = t["config"]
    size = sum(os.path.getsize(os.path.join(model_dir, n)) for n in os.listdir(model_dir)
               if n.endswith(".safetensors"))
    name = os.path.basename(os.path.normpath(model_dir))
    played = [g for g in games.names() if games.get(g).setups.expert is not None]
    lines = [
        f"# {name}", "",
        f"A game-playing policy for fpx-arena's {' and '.join(f'`{g}`' for g in played)} (one model for "
        f"{'both' if len(played) == 2 else 'all'} games), trained from scratch by imitation of the scripted "
        f"experts ({', '.join(f'`{games.get(g).setups.expert}`' for g in played)}). "
        f"Use it as `llm:{name}@bf16` (or any precision the engine offers).", "",
        "## Model", "",
        "| | |", "|---|---|",
        f"| architecture | Llama (LlamaForCausalLM): {c['n_layers']} layers, hidden {c['dim']}, "
        f"{c['n_heads']} heads / {c['n_kv_heads']} KV heads of {c['head_dim']}, SwiGLU {c['intermediate_size']}, "
        f"RMSNorm, RoPE theta {c['rope_theta']:g}, untied embeddings |",
        f"| parameters | {t['parameters']:,} |",
        f"| vocabulary | {t['vocab_size']} (byte-level BPE trained on the prompts; ChatML) |",
        f"| context | {c['max_position']} tokens (the longest training example: {t['longest_example_tokens']}) |",
        f"| weights | model.safetensors, {t['storage_dtype']}, {size / 2**20:.1f} MiB |", "",
        "## Data", "",
        f"Datasets: {', '.join(t['data'])} (fingerprint {t['data_fingerprint']}): "
        f"{t['train_examples']:,} training and {t['heldout_examples']:,} held-out (prompt, expert action) pairs, "
        "deduplicated, split by episode. Each pair is one decision of the expert under the lockstep clock, "
        "its prompt made by the LLM agent's own prompt builder (`agents.llm.PromptBuilder`); with "
        "`--explore 0.1` a random legal action was played instead of the expert's one time in ten "
        "(the label stays the expert's), so the data also covers states off the expert's path.", "",
        "## Training", "",
        "```bash",
    ]
    for d in t.get("dataset_commands", []):
        lines.append(d)
    lines += [t["command"], "```", "",
              f"Next-token cross-entropy on the reply tokens only (the action name and `<|im_end|>`), the "
              f"prompt as context; AdamW (betas 0.9/0.95, weight decay {t['weight_decay']}), peak learning "
              f"rate {t['peak_lr']:g}, {t['warmup']} warm-up steps then cosine to a tenth; batch {t['batch_size']}, "
              f"{t['steps']} steps, seed {t['seed']}; bf16 autocast on CUDA.", "",
              f"Trained in {t['train_seconds']:.0f} s on {t['device']} (torch {t['torch']}). "
              f"Final training loss {t['final_train_loss']}; held-out reply-token loss "
              f"{t['heldout']['loss']:.4f}, token accuracy {t['heldout']['token_accuracy']:.4f}. "
              "The loss curve is loss.csv.", ""]
    if evals:
        lines += ["## Evaluation", ""]
        for title, rep in evals:
            lines += eval_tables(rep, title)
    if notes:
        lines += ["## Notes", ""] + [n + "\n" for n in notes]
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="write MODEL_CARD.md of a trained policy")
    p.add_argument("model_dir")
    p.add_argument("--eval", action="append", default=[],
                   help="evaluation JSON (fpx-arena eval --out), optionally PATH::section title")
    p.add_argument("--note", action="append", default=[], help="a paragraph for the Notes section")
    args = p.parse_args(argv)
    evals = []
    for item in args.eval:
        path, _, title = item.partition("::")
        with open(path, encoding="utf-8") as f:
            evals.append((title or os.path.basename(path), json.load(f)))
    text = render(args.model_dir, evals, args.note)
    with open(os.path.join(args.model_dir, "MODEL_CARD.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {os.path.join(args.model_dir, 'MODEL_CARD.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
