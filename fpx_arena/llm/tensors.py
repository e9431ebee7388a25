"""The tensors our model needs for a config: names and shapes, shared by the checkpoint
readers (what a file must hold) and the weight sources of plans (what to draw or read)."""
from __future__ import annotations


def expected_tensors(c) -> dict[str, tuple[int, ...]]:
    """Every weight our model needs for config `c`, with its shape."""
    hd, q, kv = c.head_dim, c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim
    want = {"embed.weight": (c.vocab_size, c.dim), "norm.weight": (c.dim,)}
    if not c.tie_embeddings:
        want["lm_head.weight"] = (c.vocab_size, c.dim)
    for i in range(c.n_layers):
        p = f"layers.{i}."
        want.update({p + "attn_norm.weight": (c.dim,), p + "mlp_norm.weight": (c.dim,),
                     p + "attn.q_proj.weight": (q, c.dim), p + "attn.k_proj.weight": (kv, c.dim),
                     p + "attn.v_proj.weight": (kv, c.dim), p + "attn.o_proj.weight": (c.dim, q),
                     p + "mlp.gate_proj.weight": (c.intermediate_size, c.dim),
                     p + "mlp.up_proj.weight": (c.intermediate_size, c.dim),
                     p + "mlp.down_proj.weight": (c.dim, c.intermediate_size)})
        if c.qkv_bias:
            want.update({p + "attn.q_proj.bias": (q,), p + "attn.k_proj.bias": (kv,), p + "attn.v_proj.bias": (kv,)})
        if c.o_bias:
            want[p + "attn.o_proj.bias"] = (c.dim,)
        if c.mlp_bias:
            want.update({p + "mlp.gate_proj.bias": (c.intermediate_size,),
                         p + "mlp.up_proj.bias": (c.intermediate_size,), p + "mlp.down_proj.bias": (c.dim,)})
        if c.qk_norm:
            want.update({p + "attn.q_norm.weight": (hd,), p + "attn.k_norm.weight": (hd,)})
    return want
