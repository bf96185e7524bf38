"""Tensor Core / Matrix Core kernels by name (tracetui.analysis.tensorcores).

Every distinct GPU kernel name of every real trace (../shared/traces, skipped when absent) and of
the repository's sample traces is classified and compared with an expectation written by hand
after reading the names: the names expected to use Tensor Cores are listed per trace, every other
kernel name of that trace is expected not to. Names longer than 120 characters are written as
their first 90 characters, "…#" and a 48-bit BLAKE2b digest of the whole name (still an exact
match). Then synthetic names: Hopper/Blackwell/AMD families the traces lack, and look-alikes that
must not match.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import time
from functools import lru_cache
from pathlib import Path

import pytest

from tracetui.analysis.tensorcores import (
    _HINT_WORDS,
    NOT_TENSOR_CORE_PATTERNS,
    TENSOR_CORE_PATTERNS,
    tensor_core_mask,
    uses_tensor_cores,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "traces"
KERNEL_CATS = ("kernel", "Kernel")


def _key(name: str) -> str:
    """The name as the expectations below write it."""
    if len(name) <= 120:
        return name
    return name[:90] + "…#" + hashlib.blake2b(name.encode(), digest_size=6).hexdigest()


@lru_cache(maxsize=None)
def _kernel_names(path: Path) -> frozenset[str] | None:
    """Distinct names of the events with cat kernel/Kernel; None when the file is not JSON."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            doc = json.load(fh)
    except (ValueError, EOFError, OSError):  # JSONDecodeError, bad gzip, undecodable
        return None
    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    if not isinstance(events, list):
        return frozenset()
    return frozenset(e["name"] for e in events
                     if isinstance(e, dict) and e.get("cat") in KERNEL_CATS
                     and isinstance(e.get("name"), str))


def _cutlass80(*suffixes: str) -> tuple[str, ...]:
    """CUTLASS 2.x TF32 GEMMs as cuBLAS names them, from their tile suffixes."""
    return tuple(f"void cutlass::Kernel<cutlass_80_tensorop_s1688gemm_{s}>"
                 f"(cutlass_80_tensorop_s1688gemm_{s}::Params)" for s in suffixes)


# --------------------------------------------------------------------------------------------
# Expectations per trace (written after reading every distinct kernel name)
# --------------------------------------------------------------------------------------------

# deepseek_train.json (H800): Tensor Cores = cuBLAS sm90_xmma bf16 GEMMs, DeepSeek's FP8 grouped
# GEMMs (cutlass::device_kernel<dpsk::grouped_gemm::…::GemmKernel>), FlashAttention 3 forward
# (flash::compute_attn_ws) and backward (FlashAttnBwd). Not: FlashAttnBwdPreprocess (dot(dO, O)),
# FlashAttnBwdPostprocessConvertdQ (fp32 -> bf16; its template names an SM90 GMMA atom only for
# the layout), the grouped GEMM's utils::transpose/fill_tensormaps_kernel, every FP8 cast
# (per_token_cast_to_fp8…, per_channel_cast_and_transpose, cast_back_impl<__nv_fp8x2_e4m3>),
# DeepEP (dpsk::ep::…), layer norm, swiglu, elementwise/reduce/topk.
_DEEPSEEK_TC = (
    'sm90_xmma_gemm_bf16bf16_bf16f32_f32_nn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas',
    'sm90_xmma_gemm_bf16f32_bf16f32_f32_nt_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas',
    'sm90_xmma_gemm_bf16f32_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas',
    'void cutlass::device_kernel<dpsk::grouped_gemm::cuda::fp8_dptp128c_acc::GemmKernel>(dpsk::…#4117683487e8',
    'void cutlass::device_kernel<dpsk::grouped_gemm::cuda::fp8_ptp128c::GemmKernel>(dpsk::group…#e6570562a52a',
    'void cutlass::device_kernel<dpsk::grouped_gemm::cuda::m_grouped_fp8_ptp128c::GemmKernel>(d…#eb0176a9a9bc',
    'void cutlass::device_kernel<flash::FlashAttnBwd<flash::CollectiveMainloopBwd<2, cute::tupl…#d690649a0b51',
    'void flash::compute_attn_ws<Flash_fwd_kernel_traits<192, 128, 128, 12, 2, false, 1, cutlas…#a2aeb8187b20',
)

# hta_nccl_data.json.gz (A100, FP32 model with TF32 on): Tensor Cores = cuBLAS's CUTLASS
# tensorop_s1688 GEMMs, cuDNN's sm80_xmma implicit-GEMM convolutions (tf32, tensor16x8x8), cuDNN's
# CUTLASS tensorop_s1688 fprop/dgrad/wgrad and its mangled ImplicitGemmConvolution (MmaTensorOp,
# tfloat32_t). Not: ampere_sgemm_*, cutlass_80_simt_sgemm_*, cudnn_infer_ampere_scudnn_* (FP32
# FFMA), the CUTLASS ReduceSplitK and cuBLASLt splitKreduce that follow a split-K GEMM, cuDNN
# batch norm / layout conversions / cask offsets, NCCL, elementwise/reduce/softmax/pooling.
_NCCL_TC_OTHER = (
    '_ZN19cutlass_cudnn_train6KernelINS_4conv6kernel23ImplicitGemmConvolutionINS1_11threadblock…#06542c10d893',
    '_ZN19cutlass_cudnn_train6KernelINS_4conv6kernel23ImplicitGemmConvolutionINS1_11threadblock…#589dc5889511',
    'sm80_xmma_dgrad_implicit_gemm_tf32f32_tf32f32_f32_nhwckrsc_nhwc_tilesize128x128x16_stage4_…#cae88a3c8c3d',
    'sm80_xmma_dgrad_implicit_gemm_tf32f32_tf32f32_f32_nhwckrsc_nhwc_tilesize64x128x32_stage5_w…#834dcd61d49e',
    'sm80_xmma_fprop_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize128x128x16…#020ec6e5ad40',
    'sm80_xmma_fprop_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize128x128x16…#ffb364802117',
    'sm80_xmma_fprop_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize256x64x32_…#b22cd3017d8a',
    'sm80_xmma_fprop_implicit_gemm_tf32f32_tf32f32_f32_nhwckrsc_nhwc_tilesize64x128x32_stage5_w…#b81a031b6b4b',
    'sm80_xmma_wgrad_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nhwc_tilesize128x128x16…#f283118648fc',
    'sm80_xmma_wgrad_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nhwc_tilesize128x128x16…#f9622a9f66cb',
    'sm80_xmma_wgrad_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nhwc_tilesize64x128x32_…#741759c4b89e',
    'sm80_xmma_wgrad_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nhwc_tilesize64x64x64_s…#7e6e3a39488b',
    'void cutlass_cudnn_infer::Kernel<cutlass_tensorop_s1688dgrad_optimized_tf32_128x128_16x4_n…#446f1cd476cb',
    'void cutlass_cudnn_infer::Kernel<cutlass_tensorop_s1688dgrad_optimized_tf32_256x64_16x4_nh…#dec42fcc3199',
    'void cutlass_cudnn_infer::Kernel<cutlass_tensorop_s1688dgrad_optimized_tf32_64x128_32x3_nh…#a248dcdb1449',
    'void cutlass_cudnn_infer::Kernel<cutlass_tensorop_s1688dgrad_optimized_tf32_64x256_16x4_nh…#7fad5209b4a7',
    'void cutlass_cudnn_infer::Kernel<cutlass_tensorop_s1688dgrad_optimized_tf32_64x256_32x4_nh…#02c24c866572',
    'void cutlass_cudnn_infer::Kernel<cutlass_tensorop_s1688fprop_optimized_tf32_128x128_16x4_n…#06897f3393d4',
    'void cutlass_cudnn_infer::Kernel<cutlass_tensorop_s1688fprop_optimized_tf32_128x128_32x4_n…#5be8117c8d8c',
    'void cutlass_cudnn_train::Kernel<cutlass_tensorop_s1688wgrad_optimized_tf32_256x128_16x3_n…#54eaf6e389dd',
    'void cutlass_cudnn_train::Kernel<cutlass_tensorop_s1688wgrad_optimized_tf32_256x64_16x4_nh…#fb01bca728b5',
)
_NCCL_TC = _cutlass80(
    "256x64_16x4_nn_align4", "256x64_16x4_nt_align4", "256x64_16x4_tn_align4",
    "64x64_16x6_nn_align4", "64x64_16x6_nt_align4", "64x64_16x6_tn_align4",
) + _NCCL_TC_OTHER

# hta_2rank/sampled_rank-{0,1}.json.gz (A100 recommendation model, FP32 with TF32): the same 53
# cutlass_80_tensorop_s1688gemm tiles on both ranks. Not: ampere_sgemm_*, sgemm_largek_lds64,
# gemvx/gemvNSP/gemmk1 (cuBLAS FP32 GEMV and K=1 paths), splitKreduce, cuBLASLt epilogue,
# fbgemm FP8 quantize kernels, embedding kernels, NCCL SendRecv, cub sorts and scans.
_HTA_RANK_TC = _cutlass80(*"""
    128x128_16x4_nn_align4 128x128_16x4_nt_align1 128x128_16x4_nt_align4 128x128_16x5_nn_align4
    128x128_16x5_nt_align4 128x128_16x5_tn_align4 128x128_32x3_nn_align1 128x128_32x3_nt_align1
    128x128_32x3_nt_align4 128x128_32x3_tn_align1 128x128_32x3_tn_align4 128x128_32x5_nn_align4
    128x128_32x5_nt_align4 128x128_32x5_tn_align4 128x256_32x3_nn_align1 128x256_32x3_nn_align4
    128x256_32x3_nt_align1 128x256_32x3_nt_align4 128x256_32x3_tn_align1 128x256_32x3_tn_align4
    128x64_16x6_nn_align1 128x64_16x6_nn_align4 128x64_16x6_nt_align1 128x64_16x6_tn_align4
    128x64_32x6_nn_align4 128x64_32x6_nt_align1 128x64_32x6_tn_align4 256x128_32x3_nn_align1
    256x128_32x3_nn_align4 256x128_32x3_nt_align1 256x128_32x3_nt_align4 256x128_32x3_tn_align1
    256x128_32x3_tn_align4 256x64_16x4_nn_align1 256x64_16x4_nn_align4 256x64_16x4_tn_align4
    256x64_16x4_tt_align4 64x128_32x3_tn_align1 64x64_16x6_nn_align4 64x64_16x6_nt_align1
    64x64_16x6_nt_align4 64x64_16x6_tn_align4 64x64_32x4_nn_align4 64x64_32x4_nt_align1
    64x64_32x4_nt_align4 64x64_32x4_tn_align1 64x64_32x4_tn_align4 64x64_32x6_nn_align1
    64x64_32x6_nn_align4 64x64_32x6_nt_align1 64x64_32x6_nt_align4 64x64_32x6_tn_align1
    64x64_32x6_tn_align4""".split())

# tracelens_mi300_rccl.json.gz (MI300X, bf16 ResNet): Matrix Cores = hipBLASLt/Tensile Cijk_…
# with an MI (MFMA) field, composable_kernel xdl/xdlops convolutions, MIOpen igemm_*_gtcx3_*
# (xdlops, wave tiles wt32x32x8…). Not: MIOpen SubTensorOp*, batched_transpose_*, transpose_*,
# RCCL ncclDevKernel_Generic, batch norm, pooling, elementwise/reduce.
_RCCL_TC = (
    'Cijk_Ailk_Bjlk_BBS_BH_Bias_HAS_SAV_UserArgs_MT64x32x64_MI16x16x1_SN_LDSB0_AFC1_AFEM1_AFEM1…#3dcdcf3ba9f9',
    'Cijk_Ailk_Bjlk_BBS_BH_MT32x32x64_MI16x16x16x1_SN_1LDSB0_APM1_ABV0_ACED0_AF0EM1_AF1EM1_AMAS…#4b2b1ce6f824',
    'Cijk_Ailk_Bljk_BBS_BH_Bias_HAS_SAV_UserArgs_MT16x16x256_MI16x16x1_SN_LDSB1_AFC1_AFEM1_AFEM…#ef1c00d3fb5c',
    'Cijk_Ailk_Bljk_BBS_BH_MT32x32x64_MI16x16x16x1_SN_1LDSB0_APM1_ABV0_ACED0_AF0EM1_AF1EM1_AMAS…#e9ca25ebb4e5',
    'Cijk_Ailk_Bljk_BBS_BH_MT32x32x64_MI16x16x16x1_SN_1LDSB0_APM1_ABV0_ACED0_AF0EM1_AF1EM1_AMAS…#2f2bfdad332a',
    'Cijk_Ailk_Bljk_BBS_BH_MT64x64x64_MI16x16x16x1_SN_1LDSB0_APM1_ABV0_ACED0_AF0EM1_AF1EM1_AMAS…#981e5c45db83',
    'Cijk_Alik_Bljk_BBS_BH_Bias_HAS_SAV_UserArgs_MT16x16x256_MI16x16x1_SN_LDSB1_AFC1_AFEM1_AFEM…#c49370c45aef',
    '_ZN2ck16tensor_operation6device12_GLOBAL__N_139kernel_grouped_conv_fwd_xdl_cshuffle_v3INS_…#785bf6432d14',
    '_ZN2ck16tensor_operation6device12_GLOBAL__N_139kernel_grouped_conv_fwd_xdl_cshuffle_v3INS_…#bd7621c5bd66',
    '_ZN2ck16tensor_operation6device12_GLOBAL__N_149kernel_grouped_conv_fwd_multiple_abd_xdl_cs…#6769e32a0879',
    '_ZN2ck16tensor_operation6device37kernel_batched_gemm_xdlops_bwd_weightINS_47GridwiseGemm_b…#e7ca7d6528b4',
    '_ZN2ck16tensor_operation6device37kernel_batched_gemm_xdlops_bwd_weightINS_47GridwiseGemm_b…#8a5d63f13119',
    'igemm_bwd_gtcx3_nhwc_bf16_bx0_ex1_bt128x128x32_wt32x32x8_ws1x1_wr2x2_ta1x8x2x1_1x4x1x64_tb1x8x1x2_1x4x1x64_mh_gkgs',
    'igemm_bwd_gtcx3_nhwc_bf16_bx0_ex1_bt128x64x32_wt32x32x8_ws1x1_wr1x2_ta1x8x2x1_1x4x1x64_tb1x4x1x2_1x8x1x32_mh_gkgs',
    'igemm_bwd_gtcx3_nhwc_bf16_bx0_ex1_bt32x128x32_wt16x64x4_ws1x1_wr1x1_ta1x4x1x1_1x8x1x32_tb1x4x1x4_1x8x1x32_mh_gkgs',
    'igemm_bwd_gtcx3_nhwc_bf16_bx0_ex1_bt32x64x32_wt16x64x4_ws1x1_wr1x1_ta1x8x1x1_1x4x1x32_tb1x8x1x2_1x4x1x32_mh',
    'igemm_bwd_gtcx3_nhwc_bf16_bx0_ex1_bt64x128x32_wt32x32x8_ws1x1_wr2x1_ta1x8x1x1_1x4x1x64_tb1x8x1x2_1x4x1x64_mh_gkgs',
    'igemm_fwd_gtcx3_nhwc_bf16_bx0_ex1_bt128x128x32_wt32x32x8_ws1x1_wr2x2_ta1x8x2x1_1x4x1x64_tb1x8x2x1_1x4x1x64_gkgs',
    'igemm_fwd_gtcx3_nhwc_bf16_bx0_ex1_bt256x64x8_wt64x16x4_ws1x1_wr2x2_ta1x1x8x1_1x8x1x32_tb1x1x2x1_1x8x1x32_me',
    'igemm_fwd_gtcx3_nhwc_bf16_bx0_ex1_bt64x128x32_wt32x32x8_ws1x1_wr2x1_ta1x8x1x1_1x4x1x64_tb1x8x2x1_1x4x1x64_gkgs',
    'igemm_wrw_gtcx3_nhwc_bf16_bx0_ex1_bt128x64x32_wt32x32x8_ws1x1_wr1x2_ta1x4x1x4_1x8x1x32_tb1x4x1x2_1x8x1x32_gkgs',
    'igemm_wrw_gtcx3_nhwc_bf16_bx0_ex1_bt256x128x16_wt32x32x8_ws2x1_wr2x2_ta1x4x1x4_1x4x1x64_tb1x4x1x2_1x4x1x64_gkgs',
    'igemm_wrw_gtcx3_nhwc_bf16_bx0_ex1_bt64x32x32_wt16x16x16_ws1x1_wr2x1_ta1x4x1x2_1x8x1x32_tb1x4x1x1_1x8x1x32_vs1_gkgs',
    'igemm_wrw_gtcx3_nhwc_bf16_bx0_ex1_bt64x64x64_wt32x32x8_ws1x1_wr1x1_ta1x4x1x4_1x16x1x16_tb1x4x1x4_1x16x1x16_gkgs',
)

# sample_traces/annotated.json: cuBLAS sm90_xmma bf16 GEMMs, DeepGEMM fp8_gemm_kernel, FlashMLA-era
# FlashAttention 2 flash_fwd_splitkv_kernel. Not: flash_fwd_splitkv_combine_kernel, DeepEP
# (deep_ep::…), per_token_cast_to_fp8 / swiglu_…_cast_to_fp8, norms, top-k, elementwise.
# sample_traces/decode.json: sm90_xmma GEMM, DeepSeek's masked FP8 grouped GEMM, dpsk::gemm::
# fp8_gemm_kernel, FlashMLA flash_fwd_splitkv_mla_kernel. Not: its mla_combine_kernel, dpsk::ep
# low-latency dispatch/combine, rms_norm, rotary, casts, routing.
# sample_traces/prefill.json.gz and tracetui/data/demo.json.gz (same kernels): sm90_xmma GEMMs,
# DeepGEMM, FlashAttention 3 compute_attn_ws. Not: NCCL, DeepEP, casts, cub scans.
_ANNOTATED_TC = (
    'sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas',
    'sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x64x64_warpgroupsize1x1x1_execute_segment_k_on_kernel__5x_cublas',
    'void deep_gemm::fp8_gemm_kernel<4096u, 7168u, 64u, 128u, 128u, 1u, 8u, 1u, (deep_gemm::Gem…#f484ca2eeeac',
    'void deep_gemm::fp8_gemm_kernel<4096u, 7168u, 64u, 128u, 128u, 8u, 8u, 1u, (deep_gemm::Gem…#ecdddeb2085c',
    'void deep_gemm::fp8_gemm_kernel<7168u, 2048u, 64u, 128u, 128u, 1u, 8u, 1u, (deep_gemm::Gem…#5e1d9309ca25',
    'void deep_gemm::fp8_gemm_kernel<7168u, 2048u, 64u, 128u, 128u, 8u, 8u, 1u, (deep_gemm::Gem…#2a7d2f494c6c',
    'void flash_fwd_splitkv_kernel<Flash_fwd_kernel_traits<576, 64, 64, 4, false, false, cutlas…#afaa676804c9',
)
_DECODE_TC = (
    'sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas',
    'void cutlass::device_kernel<dpsk::grouped_gemm::cuda::m_grouped_fp8_masked::GemmKernel>(dp…#c068d6b39953',
    'void dpsk::gemm::fp8_gemm_kernel<2112u, 7168u, 64u, 128u, 128u, 1u, 8u, 128u, (dpsk::gemm:…#e053513b3aee',
    'void dpsk::gemm::fp8_gemm_kernel<24576u, 1536u, 64u, 128u, 128u, 1u, 8u, 128u, (dpsk::gemm…#4460417c23cf',
    'void dpsk::gemm::fp8_gemm_kernel<256u, 7168u, 64u, 128u, 128u, 1u, 8u, 128u, (dpsk::gemm::…#1988a2f36b37',
    'void dpsk::gemm::fp8_gemm_kernel<36864u, 7168u, 64u, 128u, 128u, 1u, 8u, 128u, (dpsk::gemm…#9001d441ccf8',
    'void dpsk::gemm::fp8_gemm_kernel<4096u, 7168u, 64u, 128u, 128u, 1u, 8u, 128u, (dpsk::gemm:…#94f7d40e9a7c',
    'void dpsk::gemm::fp8_gemm_kernel<7168u, 16384u, 64u, 128u, 128u, 1u, 8u, 128u, (dpsk::gemm…#e01896b6f7a0',
    'void dpsk::gemm::fp8_gemm_kernel<7168u, 18432u, 64u, 128u, 128u, 1u, 8u, 128u, (dpsk::gemm…#847705275176',
    'void dpsk::gemm::fp8_gemm_kernel<7168u, 2048u, 64u, 128u, 128u, 1u, 8u, 128u, (dpsk::gemm:…#8efba165d3a5',
    'void flash::flash_fwd_splitkv_mla_kernel<Flash_fwd_kernel_traits_mla<576, 64, 64, 8, cutla…#67ecec5b2957',
)
_PREFILL_TC = (
    'sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas',
    'sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x64x64_warpgroupsize1x1x1_execute_segment_k_on_kernel__5x_cublas',
    'void deep_gemm::fp8_gemm_kernel<4096u, 7168u, 128u, 128u, 128u, 1u, 8u, 1u, (deep_gemm::Ge…#428fc9a76792',
    'void deep_gemm::fp8_gemm_kernel<4096u, 7168u, 128u, 128u, 128u, 8u, 8u, 1u, (deep_gemm::Ge…#d9d986d86fcd',
    'void deep_gemm::fp8_gemm_kernel<7168u, 2048u, 128u, 128u, 128u, 1u, 8u, 1u, (deep_gemm::Ge…#2b13de41c78c',
    'void deep_gemm::fp8_gemm_kernel<7168u, 2048u, 128u, 128u, 128u, 8u, 8u, 1u, (deep_gemm::Ge…#ab92c90cd056',
    'void flash::compute_attn_ws<Flash_fwd_kernel_traits<192, 128, 128, 12, 2, false, 1, cutlas…#598df75baa53',
)

#: path -> (distinct kernel names, names expected on Tensor Cores). "shared/…" is under
#: ../shared/traces, anything else under the repository root.
EXPECTED: dict[str, tuple[int, tuple[str, ...]]] = {
    "shared/deepseek_train.json": (89, _DEEPSEEK_TC),
    "shared/hta_nccl_data.json.gz": (70, _NCCL_TC),
    "shared/hta_2rank/sampled_rank-0.json.gz": (194, _HTA_RANK_TC),
    "shared/hta_2rank/sampled_rank-1.json.gz": (183, _HTA_RANK_TC),
    # Volta FP32 ResNets: cudnn volta_scudnn/winograd/implicit_convolve_sgemm, volta_sgemm: none.
    "shared/hta_ns_resolution.pt.trace.json.gz": (77, ()),
    "shared/kineto2021_resnet50.pt.trace.json.gz": (67, ()),
    "shared/tracelens_mi300_rccl.json.gz": (55, _RCCL_TC),
    "sample_traces/annotated.json": (20, _ANNOTATED_TC),
    "sample_traces/decode.json": (27, _DECODE_TC),
    "sample_traces/prefill.json.gz": (21, _PREFILL_TC),
    "tracetui/data/demo.json.gz": (21, _PREFILL_TC),
}


def _path(rel: str) -> Path:
    return SHARED / rel.removeprefix("shared/") if rel.startswith("shared/") else ROOT / rel


def _trace_files(base: Path) -> list[Path]:
    return sorted(p for p in base.rglob("*") if p.is_file()
                  and (p.name.endswith(".json") or p.name.endswith(".json.gz")))


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_every_kernel_name_of_a_trace(rel: str) -> None:
    path = _path(rel)
    if rel.startswith("shared/") and not SHARED.is_dir():
        pytest.skip("../shared/traces not present")
    names = _kernel_names(path)
    assert names is not None, f"{rel} is not JSON"
    count, expected_tc = EXPECTED[rel]
    assert len(names) == count
    assert len(set(expected_tc)) == len(expected_tc)
    ordered = sorted(names)
    mask = tensor_core_mask(ordered)
    assert mask == [uses_tensor_cores(n) for n in ordered]
    got = {_key(n) for n, tc in zip(ordered, mask) if tc}
    want = {_key(e) for e in expected_tc}  # a written key is its own key
    assert not (got - want), f"taken for Tensor Cores, not expected: {sorted(got - want)}"
    assert not (want - got), f"expected on Tensor Cores, not taken: {sorted(want - got)}"


def _unlisted(base: Path, prefix: str) -> list[str]:
    """Trace files under base with kernel names that EXPECTED does not cover."""
    out = []
    for p in _trace_files(base):
        rel = prefix + p.relative_to(base).as_posix()
        if rel not in EXPECTED and _kernel_names(p):
            out.append(rel)
    return out


def test_every_repo_trace_with_kernels_is_listed() -> None:
    listed = _unlisted(ROOT / "sample_traces", "sample_traces/")
    listed += _unlisted(ROOT / "tracetui" / "data", "tracetui/data/")
    assert listed == []


def test_every_shared_trace_with_kernels_is_listed() -> None:
    if not SHARED.is_dir():
        pytest.skip("../shared/traces not present")
    assert _unlisted(SHARED, "shared/") == []


# --------------------------------------------------------------------------------------------
# Synthetic names
# --------------------------------------------------------------------------------------------

_SM90_ATOM = ("cute::TiledMMA<cute::MMA_Atom<cute::SM90_64x96x16_F32BF16BF16_SS<(cute::GMMA::"
              "Major)0, (cute::GMMA::Major)1> >, cute::Layout<cute::tuple<cute::C<1>, cute::C<1>,"
              " cute::C<1> > > >")

POSITIVE = [
    # cuBLAS 12 on Hopper / Blackwell
    "nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NNT",
    "nvjet_sm100_tst_64x32_64x16_2x1_2cta_h_bz_TNT",
    "nvjet_sm120_tst_mma_64x64x128_3_32x32x128_tmaAB_alignCD4_bz_TNNN",
    "nvjet_hsh_256x128_64x4_2x1_v_bz_coopB_TNT",
    "sm90_xmma_gemm_e4m3e4m3_e4m3f32_f32_tn_n_tilesize128x128x128_warpgroupsize1x1x1_execute_"
    "segment_k_off_kernel__5x_cublas",
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64_cgasize1x2x1_warpgroupsize2x1x1_"
    "execute_segment_k_off_kernel__5x_cublas",
    "sm90_xmma_gemm_tf32f32_tf32f32_f32_nn_n_tilesize128x128x32_warpgroupsize1x1x1_execute_"
    "segment_k_off_kernel__5x_cublas",
    "sm90_xmma_gemm_f16f16_f16f32_f32_nt_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_"
    "k_off_kernel__5x_cublas",
    "sm100_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize256x128x64_cgasize2x1x1_execute_segment_k_"
    "off_kernel__5x_cublas",
    # cuBLAS / cuDNN on Ampere
    "sm80_xmma_gemm_f16f16_f16f32_f32_nn_n_tilesize128x128x32_stage5_warpsize2x2x1_tensor16x8x16_"
    "execute_kernel__5x_cublas",
    "sm86_xmma_fprop_implicit_gemm_f16f16_f16f32_f32_nhwckrsc_nhwc_tilesize128x128x32_stage4_"
    "warpsize2x2x1_g1_tensor16x8x16_execute_kernel_cudnn",
    "sm80_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize256x128x32_stage3_warpsize4x2x1_execute_"
    "kernel__5x_cublas",
    # CUTLASS 3 (Hopper / Blackwell) and CuTe
    "cutlass3x_sm90_tensorop_gemm_bf16_bf16_f32_void_bf16_128x256x64_1x2x1_0_tnn_align8_"
    "warpspecialized_cooperative_epi_tma",
    "cutlass3x_sm90_tensorop_s64x128x16gemm_f16_f16_f32_f16_f16_128x128x64_1x2x1_0_tnn_align8_"
    "warpspecialized_epi_tma",
    "cutlass3x_sm100_tensorop_gemm_f16_f16_f32_f16_f16_256x128x64_2x1x1_0_tnn_align8_2sm",
    "cutlass3x_sm100_bstensorop_gemm_ue8m0xe4m3_ue8m0xe4m3_f32_void_bf16_128x128x128_1x1x1_0_tnn_"
    "align32_1sm",
    "void cutlass::device_kernel<cutlass::gemm::kernel::GemmUniversal<cute::tuple<int, int, int, "
    "int>, cutlass::gemm::collective::CollectiveMma<cutlass::gemm::MainloopSm90TmaGmmaWarp"
    "SpecializedCooperative<4, cute::tuple<cute::C<2>, cute::C<1>, cute::C<1> >, cutlass::gemm::"
    "KernelTmaWarpSpecializedCooperative> > > >(cutlass::gemm::kernel::GemmUniversal<>::Params)",
    "void cutlass::device_kernel<cutlass::gemm::kernel::GemmUniversal<cute::tuple<int, int, int, "
    "int>, cutlass::gemm::collective::CollectiveMma<cutlass::gemm::MainloopSm100TmaUmmaWarp"
    "Specialized<3, 8, 2, cute::tuple<cute::C<1>, cute::C<1>, cute::C<1> > > > > >(Params)",
    "void gemm_device<" + _SM90_ATOM + ">(int, int, int, cute::bfloat16_t const*)",
    "void gemm_device<cute::TiledMMA<cute::MMA_Atom<cute::SM80_16x8x16_F32F16F16F32_TN>, cute::"
    "Layout<cute::tuple<cute::C<2>, cute::C<2>, cute::C<1> > > > >(int, int, int, float*)",
    "void cutlass::Kernel<cutlass::gemm::kernel::GemmUniversal<cutlass::gemm::threadblock::"
    "MmaMultistage<cutlass::gemm::GemmShape<128, 128, 32>, cutlass::gemm::warp::MmaTensorOp<"
    "cutlass::gemm::GemmShape<64, 64, 32>, cutlass::half_t> > > >(Params)",
    "void wgmma_gemm_kernel<128, 128>(float*, __nv_bfloat16 const*, __nv_bfloat16 const*)",
    "void tcgen05_gemm_kernel<256>(float*, __nv_bfloat16 const*)",
    "cutlass_75_tensorop_h1688gemm_256x128_32x2_tn_align8",
    "void cutlass::Kernel2<cutlass_80_wmma_tensorop_h161616gemm_32x32_128x2_tn_align8>(Params)",
    "void wmma_example(__half*, __half*, float*, int, int, int, float, float)",
    # PyProf / TensorBoard names (Volta .. Ampere cuBLAS and cuDNN)
    "volta_h884gemm_64x64_ldg8_nn",
    "volta_fp16_s884gemm_fp16_128x128_ldg8_f2f_nn",
    "turing_h1688gemm_128x128_ldg8_tn",
    "turing_fp16_s1688gemm_fp16_256x128_ldg8_f2f_tn",
    "ampere_bf16_s16816gemm_bf16_128x128_ldg8_f2f_stages_32x5_nn",
    "ampere_fp16_s16816gemm_fp16_64x64_sliced1x2_ldg8_f2f_stages_64x5_tn",
    "volta_fp16_h884cudnn_256x128_ldg8_relu_exp_small_nhwc_tn_v1",
    "turing_fp16_s1688cudnn_fp16_256x128_ldg8_relu_f2f_exp_small_nhwc_tn_v1",
    "turing_int8_i8816gemm_int8_128x128_ldg16_tn",
    "ampere_c1688gemm_64x64_nn",
    "volta_fp16_hmma_128x64_nn",
    "turing_imma_int8_128x128_nt",
    "volta_fp16_dgrad_1x1_stride_2x2",
    "void cudnn::detail::first_layer_wgrad_kernel<__half, 16>(cudnnTensorStruct)",
    "volta_fp16_conv1x1_nhwc_kernel",
    "void conv2d_c1_k1_nhwc_kernel<__half>(int)",
    "void cudnn::cnn::direct_group_conv_kernel<__half>(int)",
    "void cutlass::device_kernel<sglang::fp8_blockwise::GemmKernel>(sglang::fp8_blockwise::"
    "GemmKernel::Params)",
    # DeepGEMM
    "void deep_gemm::sm90_fp8_gemm_1d2d_impl<0u, 4096u, 7168u, 128u>(float*, int*, unsigned int)",
    "void deep_gemm::sm100_bf16_gemm_impl<0u, 4096u>(int*, unsigned int, CUtensorMap)",
    # attention
    "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, false, false, "
    "cutlass::bfloat16_t, Flash_kernel_traits<128, 128, 64, 4, cutlass::bfloat16_t> >, false, "
    "true, false, false, true, true, false, false>(pytorch_flash::Flash_fwd_params)",
    "void flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel<Flash_bwd_kernel_traits<128, 64, 128, 8, "
    "2, 4, 2, false, false, cutlass::bfloat16_t, Flash_kernel_traits<128, 64, 128, 8, cutlass::"
    "bfloat16_t> >, false, false, true, false, false, true, false>(Flash_bwd_params)",
    "fmha_cutlassF_bf16_aligned_64x128_rf_sm80(PyTorchMemEffAttention::AttentionKernel<cutlass::"
    "bfloat16_t, cutlass::arch::Sm80, true, 64, 128, 128, true, true>::Params)",
    "fmha_cutlassB_f16_aligned_128x64_k128_sm80(PyTorchMemEffAttention::AttentionBackwardKernel<"
    "cutlass::arch::Sm80, cutlass::half_t, true, false, true, 128, 64, 128, false>::Params)",
    "fmha_cutlassF_f32_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel<float, "
    "cutlass::arch::Sm80, true, 64, 64, 64, true, true>::Params)",
    "void cutlass::device_kernel<flash::enable_sm90_or_later<flash::FlashAttnFwdSm90<flash::"
    "CollectiveMainloopFwdSm90<2, cute::tuple<cute::C<1>, cute::C<1>, cute::C<1> > > > > >(Params)",
    "void cutlass::device_kernel<flash::enable_sm90_or_later<flash::FlashAttnBwdSm90<flash::"
    "CollectiveMainloopBwdSm90<2, cute::tuple<cute::C<1>, cute::C<1>, cute::C<1> > > > > >(Params)",
    # AMD
    "Cijk_Ailk_Bljk_HHS_BH_MT128x128x32_MI32x32x8x1_SN_1LDSB1_GRVW8_ISA90a_K1_WG32_8_1",
    "Cijk_Alik_Bljk_F8BS_BH_UserArgs_MT256x256x128_MI32x32x1_SN_LDSB1_ISA942",
    "Custom_Cijk_Alik_Bljk_BBS_BH_Bias_HA_S_SAV_UserArgs_MT256x256x64_MI16x16x1_SN_LDSB1_ISA942",
    "void ck::kernel_gemm_xdl_cshuffle_v3<ck::GridwiseGemm_xdl_cshuffle_v3<ck::tensor_layout::gemm"
    "::RowMajor, ck::tensor_layout::gemm::ColumnMajor>, true, 2>(ck::GridwiseGemm_xdl_cshuffle_v3"
    "<>::Argument)",
    "void ck::kernel_gemm_wmma<ck::GridwiseGemm_Wmma<ck::half_t, float>, ck::half_t>(ck::half_t "
    "const*)",
    "void ck_tile::kentry<256, 1, ck_tile::FmhaFwdKernel<ck_tile::BlockFmhaPipelineQRKSVSAsync<"
    "ck_tile::BlockFmhaPipelineProblem<ck_tile::bf16_t, ck_tile::bf16_t> > > >(Kargs)",
    "void ck_tile::kentry<256, 1, ck_tile::FmhaBwdDQDKDVKernel<ck_tile::BlockFmhaBwdPipeline<"
    "ck_tile::bf16_t> > >(Kargs)",
    "void ck_tile::kentry<256, 1, ck_tile::GemmKernel<ck_tile::GemmPipeline<ck_tile::"
    "WarpGemmMfmaBf16Bf16F32M32N32K16<> > > >(ck_tile::GemmKernelArgs)",
    "igemm_fwd_gtcx2_nhwc_fp16_bx0_ex1_bt128x128x32_wt32x32x8_ws1x1_wr2x2_ta1x8x2x1_1x4x1x64_"
    "tb1x8x2x1_1x4x1x64",
    "igemm_fwd_gtcx_nchw_fp32_bx0_ex0_bt128x128x16_wt32x32x2_ws1x1_wr2x2_ta1x1x4x1_1x4x1x64_"
    "tb1x1x4x1_1x4x1x64",
    "gridwise_convolution_implicit_gemm_v4r4_xdlops_nchw_kcyx_nkhw",
    "void mfma_gemm_kernel<64>(float*, __hip_bfloat16 const*)",
]

NEGATIVE = [
    # FP32 GEMMs and convolutions on CUDA cores
    "volta_sgemm_128x64_nn",
    "ampere_sgemm_128x128_tn",
    "void cutlass::Kernel<cutlass_80_simt_sgemm_128x32_8x5_nn_align1>(cutlass_80_simt_sgemm_"
    "128x32_8x5_nn_align1::Params)",
    "cutlass_75_simt_hgemm_128x128_8x2_tn_align1",
    "sm80_xmma_gemm_f32f32_f32f32_f32_tn_n_tilesize128x128x8_stage3_warpsize2x2x1_ffma_aligna4_"
    "alignc4_execute_kernel__51_cublas",
    "sm90_xmma_gemm_f32f32_f32f32_f32_nn_n_tilesize128x128x8_warpgroupsize1x1x1_execute_segment_"
    "k_off_kernel__5x_cublas",
    "sm80_xmma_fprop_implicit_gemm_f32f32_f32f32_f32_nhwckrsc_nhwc_tilesize128x128x8_stage3_"
    "warpsize2x2x1_g1_simt_execute_kernel_cudnn",
    "void implicit_convolve_sgemm<float, float, 128, 5, 5, 3, 3, 3, 1, false, true, true>(int, "
    "int, int, float const*, int, float*, float const*, kernel_conv_params, unsigned long long, "
    "int, float, float, int, float const*, float const*, bool, int, int)",
    "void explicit_convolve_sgemm<float, int, 1024, 5, 5, 3, 3, 3, 0, false>(int, int, int)",
    "void cudnn::winograd_nonfused::winogradForwardData4x4<float, float>(cudnn::winograd_nonfused::"
    "WinogradDataParams<float, float>)",
    "volta_scudnn_winograd_128x128_ldg1_ldg4_relu_tile148t_nt_v1",
    "cudnn_infer_ampere_scudnn_128x64_relu_xregs_large_nn_v1",
    "void cudnn::cnn::wgrad_alg0_engine<float, 128, 6, 7, 3, 3, 5, false, 512>(int, int, int)",
    "void gemmSN_TN_kernel<float, 128, 16, 2, 4, 4, 4, true, cublasGemvTensorStridedBatched<float "
    "const> >(cublasGemmSmallNParams<float const, float>)",
    "void splitKreduce_kernel<32, 16, int, float, float, float, float, true, false, false>("
    "cublasSplitKParams<float>, float const*, float const*, float*)",
    "void cutlass_cudnn_train::Kernel<cutlass_cudnn_train::reduction::kernel::ReduceSplitK<"
    "cutlass_cudnn_train::MatrixShape<4, 128>, cutlass_cudnn_train::epilogue::thread::"
    "LinearCombination<float, 4, float, float, (cutlass_cudnn_train::epilogue::thread::ScaleType::"
    "Kind)0, (cutlass_cudnn_train::FloatRoundStyle)2>, cutlass_cudnn_train::reduction::thread::"
    "ReduceAdd<float, float, 4>, 4> >(cutlass_cudnn_train::reduction::kernel::ReduceSplitK<"
    "cutlass_cudnn_train::MatrixShape<4, 128>, cutlass_cudnn_train::epilogue::thread::"
    "LinearCombination<float, 4, float, float, (cutlass_cudnn_train::epilogue::thread::ScaleType::"
    "Kind)0, (cutlass_cudnn_train::FloatRoundStyle)2>, cutlass_cudnn_train::reduction::thread::"
    "ReduceAdd<float, float, 4>, 4>::Params)",
    # elementwise, reductions, norms, softmax
    "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>, "
    "at::detail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<c10::BFloat16>, at::detail::"
    "Array<char*, 3>)",
    "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::MeanOps<float, "
    "float, float, float>, unsigned int, float, 4> >(at::native::ReduceOp<float, at::native::"
    "MeanOps<float, float, float, float>, unsigned int, float, 4>)",
    "void at::native::batch_norm_collect_statistics_kernel<at::native::Var, c10::BFloat16, c10::"
    "BFloat16, float, int>(int)",
    "void cudnn::bn_fw_tr_1C11_kernel_NCHW<float, float, int, 512, true, 1, true>(int)",
    "void (anonymous namespace)::softmax_warp_forward<float, float, float, 10, true, false>(float*, "
    "float const*, int, int, int, bool const*, int, bool)",
    "void vllm::gemma_rms_norm_kernel<c10::BFloat16>(c10::BFloat16*, c10::BFloat16 const*)",
    # communication, copies
    "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)",
    "ncclKernel_AllReduce_RING_LL_Sum_float(ncclDevComm*, unsigned long, ncclWork*)",
    "ncclDevKernel_Generic(ncclDevKernelArgsStorage<4096ul>)",
    "ncclDevKernel_SendRecv(ncclDevKernelArgsStorage<4096ul>)",
    "Memcpy DtoD (Device -> Device)",
    "Memcpy HtoD (Pinned -> Device)",
    "Memset (Device)",
    "void dpsk::ep::internode::dispatch<false, 8, true, 8>(int4*, float*, long*, float*, dpsk::ep::"
    "internode::SourceMeta*, int4 const*, float const*)",
    "void deep_ep::internode_ll::combine<3, 10, 7168, 9>(void*, void*, int*, void*, void const*)",
    "void deep_ep::intranode::notify_dispatch<8>(int const*, int*, int, int const*, int*)",
    # FP8 casts and GEMM helpers: they convert or lay out, they do not multiply
    "void cuda::per_token_cast_to_fp8_with_channels<__nv_bfloat16, 128, false, 128, false>("
    "__nv_bfloat16 const*, int, unsigned char*, float*, int, int, int, int, bool, float, "
    "__nv_fp8_interpretation_t)",
    "void cuda::per_channel_cast_and_transpose<256, 128, false, false, false, false, false>(void "
    "const*, float const*, int const*, int const*, unsigned char*, float*, int, int, float, "
    "__nv_fp8_interpretation_t)",
    "void cuda::cast_back_impl<__nv_fp8x2_e4m3>(void const*, void*, float const*, int, int, int, int)",
    "void dpsk::per_token_cast_to_fp8<__nv_bfloat16, 128>(__nv_bfloat16 const*, unsigned char*, "
    "float*, int, int)",
    "void dpsk::grouped_gemm::cuda::utils::transpose<512, 128, 4, 4>(unsigned char const*, "
    "unsigned char*, int, int, int, int)",
    "dpsk::grouped_gemm::cuda::utils::fill_tensormaps_kernel(CUtensorMap_st, CUtensorMap_st*, "
    "void*, int, long)",
    "void fbgemm_gpu::(anonymous namespace)::_compute_FP8_quantize_cuda_kernel<float>(float const*"
    ", float const*, int, int, unsigned char*, bool)",
    # attention helpers
    "void cutlass::device_kernel<flash::FlashAttnBwdPostprocessConvertdQ<cute::tuple<cute::C<64>, "
    "cute::C<192> >, cutlass::bfloat16_t, float, cutlass::arch::Sm90, 256, " + _SM90_ATOM
    + ", false> >(Params)",
    "void cutlass::device_kernel<flash::FlashAttnBwdPreprocess<cute::tuple<cute::C<64>, cute::C<"
    "192> >, cutlass::bfloat16_t, float, cutlass::arch::Sm90, true, true> >(Params)",
    "void cutlass::device_kernel<flash::FlashAttnFwdCombine<cute::tuple<cute::C<8>, cute::C<256> "
    ">, 7, 256, 1, false, true, cutlass::bfloat16_t, float, cutlass::arch::Sm90> >(Params)",
    "void flash_fwd_splitkv_combine_kernel<Flash_fwd_kernel_traits<576, 64, 64, 4, false, false, "
    "cutlass::bfloat16_t, Flash_kernel_traits<576, 64, 64, 4, cutlass::bfloat16_t> >, 4, 2, false>"
    "(Flash_fwd_params)",
    "void flash::flash_fwd_splitkv_mla_combine_kernel<cutlass::bfloat16_t, float, 512, 64>("
    "Flash_fwd_mla_params)",
    "void flash_bwd_convert_dq_kernel<Flash_bwd_kernel_traits<128, 64, 128, 8, 2, 4, 2, false, "
    "false, cutlass::bfloat16_t> >(Flash_bwd_params, int)",
    "void flash_bwd_dot_do_o_kernel<true, Flash_bwd_kernel_traits<128, 64, 128, 8, 2, 4, 2, "
    "false, false, cutlass::bfloat16_t> >(Flash_bwd_params)",
    "fmha_cutlassF_f32_aligned_64x64_rf_sm75(PyTorchMemEffAttention::AttentionKernel<float, "
    "cutlass::arch::Sm75, true, 64, 64, 64, true, true>::Params)",
    "fmha_cutlassF_f32_aligned_64x64_rf_sm50(PyTorchMemEffAttention::AttentionKernel<float, "
    "cutlass::arch::Sm50, true, 64, 64, 64, true, true>::Params)",
    "void ck_tile::kentry<64, 1, ck_tile::FmhaBwdOGradDotOKernel<ck_tile::bf16_t> >(Kargs)",
    "void ck_tile::kentry<256, 1, ck_tile::FmhaFwdSplitKVCombineKernel<ck_tile::bf16_t, "
    "ck_tile::WarpGemmMfmaBf16Bf16F32M32N32K16<> > >(Kargs)",
    # AMD without MFMA
    "SubTensorOpWithScalar1d",
    "SubTensorOpWithCastTensor1d",
    "batched_transpose_32x32_half",
    "transpose_NCHW2CNHW_V2_2D_WG_off64",
    "Cijk_Ailk_Bljk_SB_MT64x64x8_SE_K1_TT4_4_WG16_16_1",
    "igemm_fwd_gtc_nchw_fp32_bx0_ex0_bt128x128x8_tt8x8_gm2x4x4_ta1x1x4x1_1x8x1x32_tb1x1x4x1_1x8x1x32",
    "MIOpenBatchNormFwdTrainSpatial",
    "naive_conv_fwd_nchw_float",
    # 884 / 1688 / 16816 inside template arguments and other words
    "void foo_kernel<1688, 884>(int*)",
    "void at::native::reduce_kernel<16816, 1>(float*)",
    "void gather_kernel<12884, 8816, 16832>(long*)",
    "void copy_kernel<s1688>(float*)",
    "tile1688_kernel",
    "layer_16816_norm",
    "void at::native::index_elementwise_kernel<128, 4, at::native::gpu_index_kernel<at::native::"
    "index_put_kernel_impl<at::native::OpaqueType<1> >(at::TensorIterator&, c10::ArrayRef<long>, "
    "c10::ArrayRef<long>)::{lambda(char*, char const*, long)#1}> >(long, 1688884)",
    # the name does not say: Triton, empty
    "triton_tem_fused_mm_0",
    "triton_poi_fused_add_0",
    "",
]


@pytest.mark.parametrize("name", POSITIVE)
def test_tensor_core_names(name: str) -> None:
    assert uses_tensor_cores(name)


@pytest.mark.parametrize("name", NEGATIVE)
def test_not_tensor_core_names(name: str) -> None:
    assert not uses_tensor_cores(name)


def test_names_lists_have_no_duplicates_and_do_not_overlap() -> None:
    assert len(set(POSITIVE)) == len(POSITIVE)
    assert len(set(NEGATIVE)) == len(NEGATIVE)
    assert not set(POSITIVE) & set(NEGATIVE)


def test_patterns_are_data_with_notes() -> None:
    for table in (TENSOR_CORE_PATTERNS, NOT_TENSOR_CORE_PATTERNS):
        assert isinstance(table, tuple) and table
        for entry in table:
            assert isinstance(entry, tuple) and len(entry) == 2
            pattern, note = entry
            assert isinstance(pattern, str) and isinstance(note, str) and note.strip()
            re.compile(pattern)


def test_every_pattern_has_an_example() -> None:
    """Each Tensor Core pattern takes some positive name, each exclusion some negative name."""
    for pattern, note in TENSOR_CORE_PATTERNS:
        assert any(re.search(pattern, n) for n in POSITIVE), note
    for pattern, note in NOT_TENSOR_CORE_PATTERNS:
        assert any(re.search(pattern, n) for n in NEGATIVE), note


def test_every_match_contains_a_hint_word() -> None:
    """The pre-filter never hides a match: what each pattern matches holds one of its words."""
    for pattern, note in TENSOR_CORE_PATTERNS:
        for name in POSITIVE:
            for m in re.finditer(pattern, name):
                text = m.group(0).lower()
                assert any(w in text for w in _HINT_WORDS), (note, m.group(0))


def test_exclusions_matter() -> None:
    """Some look-alikes would be taken without the exclusions: they are not decoration."""
    positive = [re.compile(p) for p, _ in TENSOR_CORE_PATTERNS]
    saved = [n for n in NEGATIVE if any(p.search(n) for p in positive)]
    assert any("FlashAttnBwdPostprocessConvertdQ" in n for n in saved)
    assert any("FmhaFwdSplitKVCombineKernel" in n for n in saved)


def test_mask_matches_single_calls_in_order_with_repeats() -> None:
    names = POSITIVE + NEGATIVE
    names = names + names[::-1] + names[:5]
    assert tensor_core_mask(names) == [uses_tensor_cores(n) for n in names]
    assert tensor_core_mask([]) == []
    assert tensor_core_mask(["", "volta_h884gemm_64x64_ldg8_nn", ""]) == [False, True, False]


def test_mask_tolerates_values_that_are_not_names() -> None:
    odd = [None, 3, ["volta_h884gemm"], "volta_h884gemm_64x64_ldg8_nn"]
    assert tensor_core_mask(odd) == [False, False, False, True]  # type: ignore[arg-type]


@pytest.mark.parametrize("token", ["xmma_", "Cijk_", "flash_", "Fmha", "dpsk::gemm", "igemm_fwd_",
                                   "fmha_cutlassF_f16_", "deep_gemm::", "flash::FlashAttnBwd"])
def test_no_runaway_on_huge_names(token: str) -> None:
    """A pattern's open-ended part is bounded: a 200 kB name is still searched in well under 5 s."""
    name = token * (200_000 // len(token))
    start = time.perf_counter()
    tensor_core_mask([name])
    assert time.perf_counter() - start < 5.0


def test_mask_is_fast_on_many_distinct_names() -> None:
    base = POSITIVE + NEGATIVE
    names = [f"{base[i % len(base)]}_{i}" if i % 2 else f"k{i}_{base[i % len(base)]}"
             for i in range(20_000)]
    start = time.perf_counter()
    mask = tensor_core_mask(names)
    elapsed = time.perf_counter() - start
    assert len(mask) == len(names) and any(mask) and not all(mask)
    assert elapsed < 5.0, f"{elapsed:.2f} s for {len(names)} distinct names"
