"""Train a Llama-architecture policy from scratch on `fpx-arena dataset` folders.

Next-token loss on the action tokens only, the prompt as context; a byte-level BPE tokenizer is
trained on the prompts first. Writes a Hugging Face folder (config.json, model.safetensors,
tokenizer.json, tokenizer_config.json) that `llm:<folder>@bf16` agents, fpx_arena.llm.load_model
and transformers all read, plus loss.csv, training.json and checkpoint.pt (weights and
optimizer state, every --checkpoint-every steps; --resume continues from it exactly).

Example:
  fpx-arena train --data data/fighter data/market --size tiny --steps 3000 --seed 0 --out arena-tiny
"""
from __future__ import annotations

from ..errors import UserError

HELP = "train an LLM policy from scratch on recorded expert data"


def add_arguments(p):
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="dataset folders")
    p.add_argument("--size", default="tiny", choices=["tiny", "small"])
    p.add_argument("--out", required=True, metavar="DIR", help="model folder to write")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    p.add_argument("--batch-size", type=int, default=None, help="examples per step (default per size)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default per size)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up steps (default steps/20, at most 500)")
    p.add_argument("--checkpoint-every", type=int, default=500, metavar="N")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="stop (checkpointed) after step N of --steps; continue later with --resume")
    p.add_argument("--eval-every", type=int, default=0, metavar="N",
                   help="held-out loss every N steps in the log (default: only at the end)")
    p.add_argument("--vocab-size", type=int, default=None, help="BPE vocabulary size (default 1024)")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp32"], help="storage dtype of the weights")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    import sys

    from ..policy.train import TrainArgs, train

    if args.batch_size is not None and args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    a = TrainArgs(data=args.data, size=args.size, out=args.out, steps=args.steps, seed=args.seed,
                  batch_size=args.batch_size, lr=args.lr, warmup=args.warmup,
                  checkpoint_every=args.checkpoint_every, eval_every=args.eval_every, device=args.device,
                  dtype=args.dtype, resume=args.resume, stop_after=args.stop_after, vocab_size=args.vocab_size, progress=not args.quiet,
                  command="fpx-arena train " + " ".join(sys.argv[2:]))
    s = train(a)
    if "stopped_at" in s:
        print(f"stopped after step {s['stopped_at']} of {s['steps']}; continue with --resume")
        return 0
    held = s.get("heldout") or {}
    print(f"arena-{s['size']}: {s['parameters'] / 1e6:.2f}M parameters, vocab {s['vocab_size']}, "
          f"{s['steps']} steps in {s['train_seconds']:.0f} s on {s['device']}; final train loss "
          f"{s['final_train_loss']}" + (f", held-out reply-token loss {held['loss']:.4f}, token accuracy "
                                        f"{held['token_accuracy']:.3f}" if held else "") + f" -> {args.out}")
    return 0
