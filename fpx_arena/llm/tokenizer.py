"""Tokenizers for our checkpoints, on the `tokenizers` library, with the chat template.

- HF folders: tokenizer.json, plus tokenizer_config.json (special tokens, add_bos_token,
  chat_template) and chat_template.jinja where newer transformers put the template.
- GGUF files: a byte-level BPE rebuilt from tokenizer.ggml.tokens / merges / token_type, with
  the pre-tokenizer that tokenizer.ggml.pre names (gpt2, smollm/starcoder, llama-bpe, qwen2).

Chat templates are rendered with jinja2 (as transformers does) when it is installed; without
it a built-in renderer covers the three common layouts, chosen from the special tokens the
vocabulary has: ChatML (<|im_start|>, SmolLM and Qwen), Llama 3 (<|start_header_id|>) and
Llama 2 ([INST] ... [/INST]); anything else falls back to "Role: text" lines.
"""
from __future__ import annotations

import json
import os
from datetime import datetime

from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer

from ..errors import CheckpointError

# Tokens that end an assistant turn in common templates: generation stops at any of them.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "</s>", "<|end|>")

# Split patterns of llama.cpp's pre-tokenizer names (applied before byte-level BPE).
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"
                 r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
                r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


class Tokenizer:
    """encode(text) -> ids, decode(ids) -> text, and the model's chat template."""

    def __init__(self, tk: HFTokenizer, *, bos_token: str | None = None, eos_token: str | None = None,
                 add_bos: bool = False, chat_template: str | None = None):
        self.tk = tk
        self.bos_token, self.eos_token = bos_token, eos_token
        self.bos_id = tk.token_to_id(bos_token) if bos_token else None
        self.eos_id = tk.token_to_id(eos_token) if eos_token else None
        self.add_bos = add_bos and self.bos_id is not None
        self.chat_template = chat_template
        stops = {tk.token_to_id(t) for t in END_OF_TURN} | {self.eos_id}
        self.stop_ids = {i for i in stops if i is not None}

    @property
    def vocab_size(self) -> int:
        return self.tk.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, bos: bool = False) -> list[int]:
        """Token ids of `text`. Special tokens written in the text (e.g. <|im_start|>) are
        recognised; the BOS token is prepended only with bos=True and a model that uses one."""
        ids = self.tk.encode(text, add_special_tokens=False).ids
        return ([self.bos_id] + ids) if (bos and self.add_bos) else ids

    def decode(self, ids, skip_special: bool = True) -> str:
        return self.tk.decode(list(ids), skip_special_tokens=skip_special)

    def token_to_id(self, token: str) -> int | None:
        return self.tk.token_to_id(token)

    @property
    def end_of_turn_id(self) -> int | None:
        """The token that closes an assistant reply in this model's chat format."""
        for t in ("<|im_end|>", "<|eot_id|>", "<|end|>"):
            if self.tk.token_to_id(t) is not None and (self.chat_template is None or t in self.chat_template):
                return self.tk.token_to_id(t)
        return self.eos_id

    # --- chat ---------------------------------------------------------------------------------
    def render_chat(self, messages: list[dict], add_generation_prompt: bool = True) -> str:
        """The prompt text for a list of {"role", "content"} messages."""
        if self.chat_template:
            try:
                import jinja2  # noqa: F401
            except ImportError:
                pass
            else:
                return _render_jinja(self.chat_template, messages, add_generation_prompt,
                                     self.bos_token or "", self.eos_token or "")
        return self._render_builtin(messages, add_generation_prompt)

    def _render_builtin(self, messages, add_generation_prompt):
        has = lambda t: self.tk.token_to_id(t) is not None
        if has("<|im_start|>"):
            text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
            return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")
        if has("<|start_header_id|>"):
            text = (self.bos_token or "") + "".join(
                f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content'].strip()}<|eot_id|>"
                for m in messages)
            return text + ("<|start_header_id|>assistant<|end_header_id|>\n\n" if add_generation_prompt else "")
        if has("[INST]") or (self.bos_token == "<s>" and self.eos_token == "</s>"):
            system = "".join(f"<<SYS>>\n{m['content']}\n<</SYS>>\n\n" for m in messages if m["role"] == "system")
            text = ""
            for m in (m for m in messages if m["role"] != "system"):
                if m["role"] == "user":
                    text += f"{self.bos_token or ''}[INST] {system}{m['content'].strip()} [/INST]"
                    system = ""
                else:
                    text += f" {m['content'].strip()} {self.eos_token or ''}"
            return text
        text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages)
        return text + ("Assistant:" if add_generation_prompt else "")

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_hf_folder(cls, folder: str) -> Tokenizer:
        path = os.path.join(folder, "tokenizer.json")
        if not os.path.isfile(path):
            raise CheckpointError(f"{folder}: no tokenizer.json (a SentencePiece-only tokenizer.model "
                                  "is not supported; save the tokenizer with a fast tokenizer)")
        try:
            tk = HFTokenizer.from_file(path)
        except Exception as e:  # the tokenizers library raises bare Exceptions
            raise CheckpointError(f"{path}: cannot read the tokenizer: {str(e).splitlines()[0]}") from None
        cfg_path = os.path.join(folder, "tokenizer_config.json")
        cfg = _read_json(cfg_path)
        cfg = {} if cfg is None else cfg
        if not isinstance(cfg, dict):
            raise CheckpointError(f"{cfg_path}: must hold a JSON object, got {type(cfg).__name__}")
        template = cfg.get("chat_template")
        if isinstance(template, list):  # named templates: take the default one
            template = next((t.get("template") for t in template
                             if isinstance(t, dict) and t.get("name") == "default"), None)
        if template is not None and not isinstance(template, str):
            raise CheckpointError(f"{cfg_path}: chat_template must be a string, got {template!r:.60}")
        jinja_path = os.path.join(folder, "chat_template.jinja")
        if template is None and os.path.isfile(jinja_path):
            with open(jinja_path, encoding="utf-8") as f:
                template = f.read()
        bos, eos = _token_str(cfg.get("bos_token")), _token_str(cfg.get("eos_token"))
        for what, tok in (("bos_token", bos), ("eos_token", eos)):
            if tok is not None and not isinstance(tok, str):
                raise CheckpointError(f"{cfg_path}: {what} must be a string, got {tok!r:.60}")
        add_bos = cfg.get("add_bos_token")
        if add_bos is None:  # the post-processor decides: does it put BOS in front?
            probe = tk.encode("a", add_special_tokens=True).ids
            add_bos = bool(bos) and bool(probe) and probe[0] == tk.token_to_id(bos)
        return cls(tk, bos_token=bos, eos_token=eos, add_bos=bool(add_bos), chat_template=template)

    @classmethod
    def from_gguf(cls, fields: dict, source: str = "") -> Tokenizer:
        kind = fields.get("tokenizer.ggml.model")
        tokens = fields.get("tokenizer.ggml.tokens")
        if kind is None or tokens is None:
            raise CheckpointError(f"{source}: the GGUF file has no tokenizer (tokenizer.ggml.model/tokens)")
        if kind != "gpt2":
            raise CheckpointError(f"{source}: GGUF tokenizer model {kind!r} is not supported "
                                  "(supported: gpt2-style byte-level BPE)")
        # every field is checked for its type: a damaged file must fail here in one line, not
        # inside the tokenizers library or at the first decision
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
            raise CheckpointError(f"{source}: tokenizer.ggml.tokens must be a non-empty list of strings")
        merges = fields.get("tokenizer.ggml.merges") or []
        types = fields.get("tokenizer.ggml.token_type") or [1] * len(tokens)
        pre = fields.get("tokenizer.ggml.pre", "default")
        template = fields.get("tokenizer.chat_template")
        if not isinstance(merges, list) or not all(isinstance(m, str) and " " in m for m in merges):
            raise CheckpointError(f"{source}: tokenizer.ggml.merges must be a list of \"a b\" strings")
        if (not isinstance(types, list) or len(types) != len(tokens)
                or not all(isinstance(k, int) and not isinstance(k, bool) for k in types)):
            raise CheckpointError(f"{source}: tokenizer.ggml.token_type must be one integer per token")
        if not isinstance(pre, str):
            raise CheckpointError(f"{source}: tokenizer.ggml.pre must be a string, got {pre!r:.60}")
        if template is not None and not isinstance(template, str):
            raise CheckpointError(f"{source}: tokenizer.chat_template must be a string")
        vocab = {t: i for i, t in enumerate(tokens)}
        pairs = [tuple(m.split(" ", 1)) for m in merges]
        try:
            tk = HFTokenizer(models.BPE(vocab=vocab, merges=pairs, fuse_unk=False,
                                        ignore_merges=pre in ("llama-bpe", "llama3")))
        except Exception as e:  # the tokenizers library raises bare Exceptions
            raise CheckpointError(f"{source}: the GGUF tokenizer is inconsistent: "
                                  f"{' '.join(str(e).split())[:160]}") from None
        tk.pre_tokenizer = _gguf_pre_tokenizer(pre)
        tk.decoder = decoders.ByteLevel()
        # CONTROL (3) tokens are special; USER_DEFINED (4) ones are matched whole in text.
        special = [AddedToken(t, special=True, normalized=False) for t, k in zip(tokens, types) if k == 3]
        user = [AddedToken(t, special=False, normalized=False) for t, k in zip(tokens, types) if k == 4]
        tk.add_special_tokens(special)
        if user:
            tk.add_tokens(user)

        def tok(key):
            i = fields.get(key)
            return tokens[i] if isinstance(i, int) and 0 <= i < len(tokens) else None

        return cls(tk, bos_token=tok("tokenizer.ggml.bos_token_id"), eos_token=tok("tokenizer.ggml.eos_token_id"),
                   add_bos=fields.get("tokenizer.ggml.add_bos_token", False) is True, chat_template=template)


def _gguf_pre_tokenizer(pre: str):
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if pre in ("llama-bpe", "llama3", "smaug-bpe", "dbrx"):
        return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(_LLAMA3_SPLIT), "isolated"), byte_level])
    if pre in ("qwen2", "deepseek-r1-qwen"):
        return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(_QWEN2_SPLIT), "isolated"), byte_level])
    gpt2 = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre in ("smollm", "starcoder", "refact", "codeshell"):  # digits one by one, then GPT-2
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), gpt2])
    return gpt2  # "gpt-2", "default" and names we do not know: GPT-2's own split


def _render_jinja(template, messages, add_generation_prompt, bos_token, eos_token) -> str:
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None, **_: json.dumps(x, ensure_ascii=False, indent=indent)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:  # the template comes with the checkpoint: the sandbox refuses unsafe access, we say so in one line
        return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                bos_token=bos_token, eos_token=eos_token)
    except TemplateError as e:
        raise CheckpointError(f"the model's chat template fails: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def _token_str(tok) -> str | None:
    if isinstance(tok, dict):  # {"content": "<s>", ...} in older tokenizer_config files
        return tok.get("content")
    return tok


def _read_json(path: str):
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
