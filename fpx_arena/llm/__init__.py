"""The LLM engine: a Llama/Qwen-family transformer (model.py), checkpoint readers for HF
folders and GGUF files (checkpoint.py), tokenizers with chat templates (tokenizer.py), the one
linear-layer type that precision plans swap (linear.py, precision.py) and the model registry.

``load_model(source, precision="bf16", device=None)`` is the entry point; ``list_models()``
lists the models known by name.
"""
from __future__ import annotations

from .loader import default_device, load_model, open_checkpoint
from .model import KVCache, ModelConfig, Transformer, init_random
from .registry import list_models, resolve

__all__ = ["load_model", "open_checkpoint", "default_device", "list_models", "resolve",
           "ModelConfig", "Transformer", "KVCache", "init_random"]
