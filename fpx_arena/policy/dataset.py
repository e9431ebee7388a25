"""Imitation data: the scripted experts' decisions, recorded as the LLM agent would see them.

Each episode is one match under the ``lockstep`` clock between the game's expert and an opponent
taken in turn from a varied list (the game's ``Setups``: ``games.get(name).setups``), so that the
states cover what a policy meets in play. At each of the expert's decisions the
observation goes through ``agents.llm.PromptBuilder`` -- the LLM agent's own prompt code --
and the (prompt, expert action) pair is recorded. With ``explore`` > 0 the expert's move is
replaced, with that probability, by a random legal one while the expert's choice is still the
label: the recorded states then include the off-course ones a learner drifts into, and the
labels say how to recover (the DART remedy for imitation's compounding errors).

The prompt text depends on the chat template but not on the vocabulary, so it is rendered with
our ChatML template over a plain byte-level tokenizer and tokenized later by the trained BPE
(``encode``), exactly as the agent does: prefix ids from the builder, ``encode(tail)``, and the
builder's reply ids of the action.

Layout of a dataset folder: ``train.jsonl`` and ``heldout.jsonl`` (one decision a line: game,
episode, tick, player, expert, opponent, tail, legal, action, action_name; held-out lines also
carry the observation, so evaluation can replay it through a real agent), and ``meta.json``
(the command, seed, the cached prompt prefixes, counts). Pairs are deduplicated within each
split; the split is by episode, chosen with the seed.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import random

import numpy as np
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers
from tqdm import tqdm

from .. import agents, games
from ..agents.llm import PromptBuilder
from ..errors import UserError
from ..llm.tokenizer import Tokenizer
from ..scheduler import run_match
from . import vocab

FORMAT_VERSION = 1

def setup_for(game: str):
    """The game's Setups (expert, opponents, env settings); a game without an expert has no datasets."""
    setups = games.get(game).setups
    if setups.expert is None:
        have = [g for g in games.names() if games.get(g).setups.expert is not None]
        raise UserError(f"no expert for game {game!r}; datasets exist for {', '.join(have)}")
    return setups


# --- text-only rendering of the agent's prompts ----------------------------------------------------
_TEXT_TOKENIZER = None


def text_tokenizer():
    """An engine Tokenizer with our ChatML template over bare bytes: it renders the prompt text
    exactly as a trained policy's tokenizer will (the template is the same), whatever its
    vocabulary."""
    global _TEXT_TOKENIZER
    if _TEXT_TOKENIZER is None:
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        tk = HFTokenizer(models.BPE(vocab={c: i for i, c in enumerate(sorted(alphabet))}, merges=[]))
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tk.decoder = decoders.ByteLevel()
        tk.add_special_tokens(vocab.SPECIAL_TOKENS)
        _TEXT_TOKENIZER = Tokenizer(tk, eos_token=vocab.EOS, chat_template=vocab.CHATML_TEMPLATE)
    return _TEXT_TOKENIZER


def obs_to_json(obs):
    """An observation (array, dict of arrays, number) as JSON that obs_from_json restores exactly."""
    if isinstance(obs, dict):
        return {"dict": {k: obs_to_json(v) for k, v in obs.items()}}
    if isinstance(obs, np.ndarray):
        return {"array": obs.tolist(), "dtype": str(obs.dtype)}
    if isinstance(obs, np.generic):
        return {"scalar": obs.item(), "dtype": str(obs.dtype)}
    return {"value": obs}


def obs_from_json(d):
    if "dict" in d:
        return {k: obs_from_json(v) for k, v in d["dict"].items()}
    if "array" in d:
        return np.asarray(d["array"], dtype=d["dtype"])
    if "scalar" in d:
        return np.dtype(d["dtype"]).type(d["scalar"])
    return d["value"]


class Recorder:
    """Wraps the expert: records each decision's prompt and label, and (with probability
    `explore`) plays a random legal action instead of the expert's."""

    def __init__(self, expert, game, explore: float, seed: int, keep_obs: bool, meta: dict):
        self.expert, self.game, self.explore = expert, game, float(explore)
        self.rng = random.Random(seed)
        self.keep_obs, self.meta = keep_obs, meta
        self.rows: list[dict] = []
        self.prefix_text = None

    def reset(self, agent_id, observation_space, action_space, seed):
        self.agent_id, self.tick = agent_id, 0
        self.builder = PromptBuilder(self.game, text_tokenizer(), agent_id)
        self.prefix_text = self.builder.prefix_text
        self.expert.reset(agent_id, observation_space, action_space, seed)

    def attach_env(self, env):
        if hasattr(self.expert, "attach_env"):
            self.expert.attach_env(env)

    def act(self, observation, info):
        action = self.expert.act(observation, info)
        tick, self.tick = self.tick, self.tick + 1
        if action is None:
            return None
        action = int(action)
        prompt = self.builder.build(observation, info)
        if action in prompt.legal:
            row = dict(self.meta, tick=tick, player=self.agent_id, tail=prompt.tail_text, legal=prompt.legal,
                       action=action, action_name=prompt.action_names[action])
            if self.keep_obs:
                row["obs"] = obs_to_json(observation)
            self.rows.append(row)
        if self.explore and self.rng.random() < self.explore:
            return self.rng.choice(prompt.legal)
        return action


def _episode_seed(seed: int, episode: int) -> int:
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, episode, 0xDA7A]).generate_state(1)[0]) & 0x7FFFFFFF


def heldout_episodes(episodes: int, fraction: float, seed: int) -> set[int]:
    k = max(1, round(episodes * fraction)) if fraction > 0 and episodes > 1 else 0
    return set(random.Random(seed ^ 0x5EED).sample(range(episodes), k))


def play_episode(game: str, episode: int, seed: int, explore: float, keep_obs: bool):
    """One recorded match: (rows, prefixes {player: prefix text})."""
    setup = setup_for(game)
    env = games.make(game, **setup.env)
    ids = list(env.possible_agents)
    opponents = setup.opponents
    opponent = opponents[episode % len(opponents)]
    ep_seed = _episode_seed(seed, episode)
    expert_side = ids[(episode // len(opponents)) % len(ids)]
    meta = {"game": game, "episode": episode, "expert": setup.expert, "opponent": opponent}
    recorders = {}
    players = {}
    for a in ids:
        if a == expert_side or opponent == setup.expert:  # expert vs expert: record both
            recorders[a] = Recorder(agents.make(setup.expert), games.get(game), explore, ep_seed + ids.index(a),
                                    keep_obs, meta)
            players[a] = recorders[a]
        else:
            players[a] = agents.make(opponent)
    run_match(env, players, clock="lockstep", seed=ep_seed)
    rows = [r for rec in recorders.values() for r in rec.rows]
    return rows, {a: rec.prefix_text for a, rec in recorders.items()}


def _play_many(args):
    game, episodes, seed, explore, heldout = args
    out = []
    for ep in episodes:
        out.append((ep,) + play_episode(game, ep, seed, explore, ep in heldout))
    return out


def collect(game: str, episodes: int, seed: int, out: str, heldout_fraction: float = 0.1,
            explore: float = 0.0, workers: int = 1, progress: bool = True, command: str = "") -> dict:
    """Play and record `episodes` episodes, write the dataset folder `out`; returns meta."""
    setup = setup_for(game)
    if episodes < 1:
        raise UserError("--episodes must be at least 1")
    if not 0 <= heldout_fraction < 1:
        raise UserError("--heldout must be in [0, 1)")
    if not 0 <= explore < 1:
        raise UserError("--explore must be in [0, 1)")
    held = heldout_episodes(episodes, heldout_fraction, seed)
    chunks = [list(range(i, min(i + 8, episodes))) for i in range(0, episodes, 8)]
    jobs = [(game, c, seed, explore, held) for c in chunks]
    results = {}
    bar = tqdm(total=episodes, desc=f"dataset {game}", unit="ep", disable=not progress, dynamic_ncols=True)
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            for part in pool.imap_unordered(_play_many, jobs):
                for ep, rows, prefixes in part:
                    results[ep] = (rows, prefixes)
                bar.update(len(part))
    else:
        for job in jobs:
            for ep, rows, prefixes in _play_many(job):
                results[ep] = (rows, prefixes)
                bar.update(1)
    bar.close()

    prefixes: dict[str, str] = {}
    splits = {"train": [], "heldout": []}
    seen = {"train": set(), "heldout": set()}
    decisions = 0
    for ep in range(episodes):  # episode order: the result does not depend on the worker count
        rows, pref = results[ep]
        for player, text in pref.items():
            key = f"{game}/{player}"
            if prefixes.setdefault(key, text) != text:
                raise RuntimeError(f"the prompt prefix of {key} changed between episodes")
        split = "heldout" if ep in held else "train"
        for r in rows:
            decisions += 1
            key = (r["player"], r["tail"], r["action"])
            if key in seen[split]:
                continue
            seen[split].add(key)
            splits[split].append(r)
    os.makedirs(out, exist_ok=True)
    for split, rows in splits.items():
        with open(os.path.join(out, f"{split}.jsonl"), "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, separators=(",", ":")) + "\n")
    overlap = len({(k[1], k[2]) for k in seen["heldout"]} & {(k[1], k[2]) for k in seen["train"]})
    counts = {}
    for r in splits["train"]:
        counts[r["action_name"]] = counts.get(r["action_name"], 0) + 1
    meta = {"format": FORMAT_VERSION, "game": game, "episodes": episodes, "seed": seed,
            "explore": explore, "heldout_fraction": heldout_fraction, "heldout_episodes": sorted(held),
            "expert": setup.expert, "opponents": list(setup.opponents),
            "decisions": decisions, "train": len(splits["train"]), "heldout": len(splits["heldout"]),
            "heldout_pairs_also_in_train": overlap, "train_action_counts": dict(sorted(counts.items())),
            "prefixes": prefixes, "command": command}
    with open(os.path.join(out, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    return meta


# --- reading and tokenizing ---------------------------------------------------------------------
def read_meta(folder: str) -> dict:
    path = os.path.join(folder, "meta.json")
    if not os.path.isfile(path):
        raise UserError(f"{folder}: not a dataset folder (no meta.json; make one with `fpx-arena dataset`)")
    with open(path, encoding="utf-8") as f:
        try:
            meta = json.load(f)
        except ValueError as e:
            raise UserError(f"{path}: not valid JSON ({e})") from None
    if meta.get("format") != FORMAT_VERSION:
        raise UserError(f"{path}: dataset format {meta.get('format')!r}, expected {FORMAT_VERSION}")
    return meta


def read_split(folder: str, split: str) -> list[dict]:
    path = os.path.join(folder, f"{split}.jsonl")
    if not os.path.isfile(path):
        raise UserError(f"{folder}: no {split}.jsonl")
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    raise UserError(f"{path}:{n}: not a JSON line") from None
    return rows


def load_splits(folders: list[str]):
    """(train rows, held-out rows, data files) of one or more dataset folders; every row gets
    its prompt prefix from its folder's meta.json."""
    train, held, files = [], [], []
    if not folders:
        raise UserError("no dataset folder given (--data DIR)")
    for folder in folders:
        meta = read_meta(folder)
        for split, dest in (("train", train), ("heldout", held)):
            for r in read_split(folder, split):
                key = f"{r['game']}/{r['player']}"
                if key not in meta["prefixes"]:
                    raise UserError(f"{folder}: meta.json has no prompt prefix for {key}")
                r["prefix"] = meta["prefixes"][key]
                dest.append(r)
            files.append(os.path.join(folder, f"{split}.jsonl"))
    return train, held, files


def corpus(rows: list[dict]):
    """Texts to train the tokenizer on: every prefix (weighted as often as it is read) and tail
    without the special tokens, and each action name as the agent's reply spells it."""
    def plain(text):
        for s in vocab.SPECIAL_TOKENS:
            text = text.replace(s, "\n")
        return text

    prefixes: dict[str, int] = {}
    for r in rows:
        prefixes[r["prefix"]] = prefixes.get(r["prefix"], 0) + 1
        yield plain(r["tail"])
        yield r["action_name"]
    for text, count in prefixes.items():
        for _ in range(min(count, 2000)):
            yield plain(text)


class Encoder:
    """Token ids of recorded rows, made by the LLM agent's PromptBuilder on a trained tokenizer."""

    def __init__(self, hf_tokenizer):
        self.tok = Tokenizer(hf_tokenizer, eos_token=vocab.EOS, chat_template=vocab.CHATML_TEMPLATE)
        self.builders: dict = {}

    def builder(self, game: str, player: str, prefix_text: str):
        key = (game, player)
        if key not in self.builders:
            b = PromptBuilder(games.get(game), self.tok, player)
            if b.prefix_text != prefix_text:
                raise UserError(f"the data's {game} prompt differs from the LLM agent's prompt today: "
                                "record the dataset again with `fpx-arena dataset`")
            self.builders[key] = b
        return self.builders[key]


def encode(rows: list[dict], hf_tokenizer) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, reply ids) per row; the tails go through the tokenizer in one batch."""
    enc = Encoder(hf_tokenizer)
    tails = hf_tokenizer.encode_batch([r["tail"] for r in rows], add_special_tokens=False)
    out = []
    for r, t in zip(rows, tails):
        b = enc.builder(r["game"], r["player"], r["prefix"])
        out.append((b.prefix_ids + t.ids, list(b.reply_ids[r["action"]])))
    return out

