"""FP8 and FP4 (NVFP4, MXFP4) weights for Hopper: formats, quantizers, Triton kernels and torch
references.

    qw = quantize_weight(w, "nvfp4")      # w: [N, K] float tensor, on CPU or CUDA
    y = qlinear(x, qw, bias)              # x: [..., K] bf16/fp16/fp32 -> [..., N]

See docs/kernels.md for the formats, the packed layout and the measured speed.
"""

if __name__ == "kernels":
    # Imported as a top-level `kernels` only when the repository root is on sys.path and some
    # library probes for the unrelated `kernels` distribution (transformers does): stay empty,
    # so the probe finds a package without a version instead of failing on relative imports.
    __all__: list = []
else:
    from .formats import (  # noqa: F401
        BLOCK, FORMATS, GROUP, LAYOUT, REGISTRY, Format, QuantizationError, QuantizedWeight,
        aliases, canonical_name, dense_formats, format_by_id, get_format, is_quantized,
        quantized_formats,
        decode_e2m1, decode_e4m3, decode_e8m0, encode_e2m1, encode_e2m1_reference, encode_e4m3,
        encode_e4m3_reference, pack_fp4_planes, quantize_fp8_rows, quantize_fp8_tokens,
        quantize_mxfp4, quantize_nvfp4, quantize_weight, unpack_fp4_planes,
    )
    from .ops import (  # noqa: F401
        GemvConfig, W8A8Config, WQConfig, candidate_configs, gemv_candidates, m_bucket, qlinear, quantize_act_fp8, triton_available,
        uses_fp8_activations, w8a8_candidates,
    )
    from .reference import qlinear_torch, reference_product, relative_error  # noqa: F401

    __all__ = [
        "quantize_weight", "qlinear", "QuantizedWeight", "QuantizationError", "FORMATS", "BLOCK",
        "REGISTRY", "Format", "get_format", "canonical_name", "format_by_id", "quantized_formats",
        "dense_formats", "is_quantized", "aliases",
        "encode_e4m3", "decode_e4m3", "encode_e2m1", "decode_e2m1", "decode_e8m0",
        "encode_e4m3_reference", "encode_e2m1_reference",
        "quantize_fp8_rows", "quantize_fp8_tokens", "quantize_nvfp4", "quantize_mxfp4",
        "quantize_act_fp8", "pack_fp4_planes", "unpack_fp4_planes",
        "qlinear_torch", "reference_product", "relative_error", "uses_fp8_activations",
        "WQConfig", "W8A8Config", "GemvConfig", "gemv_candidates", "candidate_configs", "w8a8_candidates", "m_bucket",
        "triton_available",
    ]
