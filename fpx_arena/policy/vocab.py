"""The tokenizer of our trained policies: a byte-level BPE learned on the games' own prompts.

Byte-level BPE round-trips any text exactly (every byte has a token, so nothing is ever
unknown). The pre-tokenizer cuts only numeric expressions (a signed number with its decimals,
or the games' compound quantities such as "+4.0x3", size at offset; ``NUMBER``) from the text
around them, not words from each other, so BPE may merge across spaces: the prompts' fixed
phrases ("Which action do you take? Answer with one word from: ...") become one token each and
each frequent number one token. A decision's changing tail is then about 20 and 40 tokens (in
the two built-in games) instead of about 70 and 110 with word-level pieces; a decision's cost on a CPU
is proportional to that count, and the embedding table stays small (2048 entries).

The chat format is ChatML (<|im_start|>role ... <|im_end|>), the layout our engine's
tokenizer renders itself when jinja2 is absent and transformers renders from the template we
write, so both read the same prompt.
"""
from __future__ import annotations

import json
import os

EOS = "<|endoftext|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [EOS, IM_START, IM_END]
NUMBER = r"[+-]?\d+(?:[.x@][+-]?\d+)*"

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def train_tokenizer(texts, vocab_size: int = 2048, min_frequency: int = 2):
    """A byte-level BPE (a `tokenizers.Tokenizer`) trained on an iterable of strings."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(NUMBER), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(texts, trainer)
    return tk


def tokenizer_config(model_max_length: int) -> dict:
    """tokenizer_config.json: what transformers' PreTrainedTokenizerFast and our loader read."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": EOS,
        "pad_token": EOS,
        "unk_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length,
        "chat_template": CHATML_TEMPLATE,
    }


def save_tokenizer(tk, folder: str, model_max_length: int) -> None:
    os.makedirs(folder, exist_ok=True)
    tk.save(os.path.join(folder, "tokenizer.json"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_config(model_max_length), f, indent=1)
        f.write("\n")
