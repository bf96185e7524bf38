"""Which GPU kernels run on Tensor Cores (NVIDIA) or Matrix Cores (AMD MFMA/XDL/WMMA), by name.

A trace says nothing about the instructions a kernel ran, so this goes by the kernel's name, as
TensorBoard's PyTorch profiler plugin does (``torch_tb_profiler/profiler/tensor_core.py`` in
pytorch/kineto, whose list came from NVIDIA PyProf, ``pyprof/prof/tc.py``: ``h884``, ``s884``,
``h1688``, ``s1688``, ``c1688``, ``hmma``, ``i8816``, ``16816``, ``xmma_gemm``,
``xmma_implicit_gemm``, ``xmma_sparse_gemm``/``_conv``, ``xmma_warp_specialized_implicit_gemm``,
``dgrad_1x1_stride_2x2``, ``first_layer_wgrad_kernel``, ``conv1x1``, ``conv2d_c1_k1``,
``direct_group``). That list predates Hopper and knows nothing of AMD; :data:`TENSOR_CORE_PATTERNS`
keeps it (anchored, so that ``884`` or ``1688`` inside a template argument does not count) and adds
the families named in each entry's note. Each entry is ``(regex, note)``; a name uses Tensor Cores
when any regex is found in it (``re.search``). The families, and where their names come from:

* cuBLAS/cuDNN hand-written kernels before xmma (PyProf): the MMA shape after a one-letter type,
  ``volta_h884gemm_…``, ``turing_fp16_s1688cudnn_…``, ``ampere_bf16_s16816gemm_bf16_…``,
  ``cutlass_80_tensorop_s1688gemm_…`` (``h``/``s``/``c``/``i``/``d``/``b`` then
  ``884``/``1688``/``8816``/``16816``/``16832`` then a letter); ``hmma``/``imma`` as words.
* NVIDIA xmma (cuBLAS ``sm80_xmma_gemm_…``, ``sm90_xmma_gemm_bf16bf16_…``, ``sm100_xmma_…``;
  cuDNN ``sm80_xmma_fprop_implicit_gemm_…_tensor16x8x8_…``): every xmma GEMM/convolution except
  the FP32 FFMA ones (types ``f32f32_f32f32_f32``, or ``ffma``/``simt`` in the name), which cuBLAS
  picks when TF32 is off; cuDNN's ``_tensorMxNxK_`` field names the MMA shape outright.
* cuBLAS 12 on Hopper/Blackwell: ``nvjet_…`` (``nvjet_tst_…``, ``nvjet_sm100_tst_…``,
  ``nvjet_hsh_…``), cuBLAS's JIT GEMMs, all built on WGMMA/UMMA.
* CUTLASS: the generated names (``cutlass_80_tensorop_…``, ``cutlass_tensorop_s1688fprop_…``,
  ``cutlass3x_sm90_tensorop_gemm_…``, ``cutlass3x_sm100_bstensorop_…``/``sptensorop``; SIMT ones
  say ``simt``); in templates, ``MmaTensorOp``/``OpClassTensorOp`` (CUTLASS 2), the CuTe MMA atoms
  ``SM80_16x8x16_F32BF16BF16F32_TN``, ``SM90_64x128x16_F32BF16BF16_SS``, ``SM100_MMA_…``,
  and ``GMMA``/``Gmma``/``wgmma``/``UMMA``/``tcgen05`` (Hopper warpgroup MMA, Blackwell UMMA).
* Custom GEMMs inside ``cutlass::device_kernel<ns::…::GemmKernel>`` (DeepSeek's
  ``dpsk::grouped_gemm::cuda::fp8_ptp128c::GemmKernel``) and DeepGEMM
  (``deep_gemm::fp8_gemm_kernel<…>``, ``dpsk::gemm::fp8_gemm_kernel<…>``): the GEMM itself, not
  the helpers around it (``…::utils::transpose``, ``fill_tensormaps_kernel``).
* Attention: FlashAttention 2 (``flash_fwd_kernel``, ``flash_fwd_splitkv_kernel``,
  ``flash_bwd_dq_dk_dv_loop_…kernel``; PyTorch's copy is ``pytorch_flash::``), FlashMLA
  (``flash_fwd_splitkv_mla_kernel``), FlashAttention 3 (``flash::compute_attn_ws``,
  ``flash::FlashAttnFwdSm90``, ``flash::FlashAttnBwd``/``FlashAttnBwdSm90``), xformers/PyTorch
  memory-efficient attention (``fmha_cutlassF_bf16_…_sm80``; FP32 only from sm80, where it is
  TF32), CK-tile FMHA (``FmhaFwdKernel``, ``FmhaBwdDQDKDVKernel``). Their pre/post-processing
  kernels (``…combine_kernel``, ``flash_bwd_convert_dq``, ``flash_bwd_dot_do_o``,
  ``FlashAttnBwdPreprocess``, ``FlashAttnBwdPostprocessConvertdQ``) only add and convert: they
  are in :data:`NOT_TENSOR_CORE_PATTERNS`, which wins over a match (their template arguments can
  name the main kernel's MMA atom).
* AMD: Tensile/hipBLASLt ``Cijk_…_MI16x16x16x1_…`` (the ``MI`` field is the MFMA instruction a
  kernel uses; kernels without it are the VALU ones); composable_kernel ``…_xdl_cshuffle…``,
  ``…_xdlops_…``, ``XdlopsGemm``, ``…_wmma_…`` (RDNA3), ``WarpGemmMfma``; MIOpen's assembly
  implicit GEMMs ``igemm_fwd_gtcx3_nhwc_bf16_…_wt32x32x8_…`` (``gtcx`` = the xdlops flavour,
  ``gtc`` without ``x`` is the DLOPS one); ``mfma`` as a word.

Not Tensor Core work, and not matched: ``volta_sgemm_*``/``ampere_sgemm_*``, ``*_scudnn_*``,
``cutlass_80_simt_*``, cuDNN winograd / ``implicit_convolve_sgemm`` / ``wgrad_alg0_engine``,
cuBLAS gemv/splitK-reduce, elementwise/reduce/norm/softmax kernels, NCCL/RCCL, DeepEP
(``dpsk::ep::…``, ``deep_ep::…``), FP8 casts (``per_token_cast_to_fp8``,
``per_channel_cast_and_transpose``: they convert, they do not multiply), MIOpen's
``SubTensorOp…``/``batched_transpose…``. Kernels whose name does not say (Triton's
``triton_tem_fused_mm_…``, FlashInfer) count as not using Tensor Cores.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = [
    "NOT_TENSOR_CORE_PATTERNS", "TENSOR_CORE_PATTERNS", "tensor_core_mask", "uses_tensor_cores",
]

#: (regex, note) pairs; a kernel name uses Tensor/Matrix Cores when any regex is found in it.
#: Patterns are case-sensitive; the module docstring says where each family's names come from.
TENSOR_CORE_PATTERNS: tuple[tuple[str, str], ...] = (
    # --- PyProf / TensorBoard (NVIDIA, Volta..Ampere) --------------------------------------------
    (r"(?<![A-Za-z0-9])[hsicdb](?:884|1688|8816|16816|16832)(?=[a-z])",
     "PyProf: MMA shape after a type letter (volta_h884gemm, turing_fp16_s1688cudnn, "
     "ampere_bf16_s16816gemm, cutlass_80_tensorop_s1688gemm, i8816)"),
    (r"(?<![A-Za-z])[hi]mma(?![a-z])", "PyProf: hmma / imma (HMMA/IMMA instructions)"),
    (r"(?<![A-Za-z])(?:dgrad_1x1_stride_2x2|first_layer_wgrad_kernel|conv1x1(?![0-9])"
     r"|conv2d_c1_k1(?![0-9])|direct_group(?![a-z]))",
     "PyProf: cuDNN 7 Volta Tensor Core convolution kernels"),
    # --- NVIDIA xmma (cuBLAS / cuDNN, sm70..sm100) -----------------------------------------------
    (r"(?<![A-Za-z])xmma_(?!\w{0,240}?(?:ffma|simt|_f32f32_f32f32_f32))",
     "PyProf xmma_gemm/xmma_implicit_gemm, extended to every xmma kernel (sm80/sm90/sm100 "
     "xmma_gemm, fprop/dgrad/wgrad implicit GEMM) except the FP32 FFMA ones"),
    (r"_tensor\d+x\d+x\d+(?![0-9])", "cuDNN: the MMA shape field (_tensor16x8x8_)"),
    # --- cuBLAS 12 Hopper / Blackwell ------------------------------------------------------------
    (r"(?<![A-Za-z])nvjet_", "cuBLAS nvjet GEMMs (Hopper/Blackwell: nvjet_tst_*, nvjet_sm100_*)"),
    # --- CUTLASS / CuTe --------------------------------------------------------------------------
    (r"(?<![A-Za-z])(?:bs|sp)?tensorop(?![a-z])",
     "CUTLASS generated names (cutlass_80_tensorop_*, cutlass3x_sm90_tensorop_*, "
     "cutlass3x_sm100_bstensorop_*)"),
    (r"(?:Mma|OpClass)TensorOp", "CUTLASS 2 templates (MmaTensorOp, OpClassTensorOp)"),
    (r"(?<![A-Za-z0-9])SM(?:7[05]|8[0-9]|9[0-9]|1[0-9]{2})a?_(?:\d+x\d+x\d+|MMA)_",
     "CuTe MMA atoms (SM80_16x8x16_F32BF16BF16F32_TN, SM90_64x128x16_…_SS, SM100_MMA_…)"),
    (r"(?<![A-Za-z])w?gmma(?![a-z])|GMMA|Gmma|Wgmma",
     "Hopper warpgroup MMA (wgmma, GMMA, MainloopSm90TmaGmma…)"),
    (r"(?<![A-Za-z])umma(?![a-z])|UMMA|Umma|tcgen05", "Blackwell UMMA / tcgen05"),
    (r"cutlass::device_kernel<\s*(?:\w+::){1,8}GemmKernel\s*>",
     "custom CUTLASS GEMMs (DeepSeek dpsk::grouped_gemm::cuda::fp8_ptp128c::GemmKernel)"),
    (r"(?:deep_gemm|dpsk)::(?:\w+::){0,6}\w{0,60}?gemm\w{0,60}?\s*[<(]",
     "DeepGEMM FP8 GEMMs (deep_gemm::fp8_gemm_kernel, dpsk::gemm::fp8_gemm_kernel)"),
    # --- attention -------------------------------------------------------------------------------
    (r"(?<![A-Za-z0-9])flash_fwd_(?:splitkv_(?:mla_)?)?kernel(?![a-z])"
     r"|(?<![A-Za-z0-9])flash_bwd_dq_dk_dv_loop\w{0,40}?kernel",
     "FlashAttention 2 / FlashMLA main loops (not their combine/convert/dot_do_o helpers)"),
    (r"flash::compute_attn(?:_ws)?\s*<|flash::FlashAttn(?:Fwd|Bwd)(?:Sm\d+)?\s*<",
     "FlashAttention 3 (compute_attn_ws, FlashAttnFwdSm90, FlashAttnBwd; not Preprocess/"
     "Postprocess/Combine)"),
    (r"fmha_cutlass[FB]_(?:b?f16_\w{0,80}?_sm(?:7[05]|8\d|9\d|1\d\d)"
     r"|f32_\w{0,80}?_sm(?:8\d|9\d|1\d\d))(?![0-9])",
     "xformers / PyTorch memory-efficient attention (fp16/bf16 from sm70, fp32 as TF32 from sm80)"),
    (r"Fmha(?:Fwd(?:SplitKV|PagedKV)?|BwdDQDKDV)Kernel(?![A-Za-z])",
     "composable_kernel ck_tile FMHA main kernels"),
    # --- AMD Matrix Cores ------------------------------------------------------------------------
    (r"(?<![A-Za-z])Cijk_\w{0,300}?_MI\d+x\d+x\d+",
     "Tensile / hipBLASLt: the MI field is the MFMA instruction (MI16x16x16x1, MI16x16x1)"),
    (r"(?<![A-Za-z])xdl(?:ops)?(?![a-z])|Xdl(?:ops)?(?![a-z])",
     "composable_kernel / MIOpen xdl, xdlops (MFMA)"),
    (r"(?<![A-Za-z])wmma(?![a-z])|Wmma(?![a-z])|WMMA",
     "WMMA: composable_kernel/rocWMMA on RDNA3, nvcuda::wmma"),
    (r"(?<![A-Za-z])mfma|Mfma|MFMA", "MFMA named outright (ck_tile WarpGemmMfma…)"),
    (r"(?<![A-Za-z])igemm_(?:fwd|bwd|wrw)_gtcx\d*_",
     "MIOpen assembly implicit GEMM, xdlops flavour (gtcx, gtcx2, gtcx3)"),
)

#: (regex, note) pairs for kernels that a pattern above would take but that do no matrix multiply:
#: the helpers of Tensor Core libraries, whose template arguments name an MMA atom only to lay out
#: their tiles like the main kernel (FlashAttention 3's ``FlashAttnBwdPostprocessConvertdQ`` carries
#: ``cute::TiledMMA<cute::MMA_Atom<cute::SM90_64x96x16_F32BF16BF16_SS<…GMMA…>>>``).
#: Checked first: a name matching one of these is not a Tensor Core kernel.
NOT_TENSOR_CORE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"flash::FlashAttn(?:Fwd|Bwd)\w{0,20}?(?:Preprocess|Postprocess|Combine)",
     "FlashAttention 3 pre/post-processing and split-KV combine (dot(dO, O), dQ convert)"),
    (r"(?<![A-Za-z])flash_\w{0,60}?(?:combine|convert|dot_do_o|clear_dkvaccum)\w{0,60}?kernel",
     "FlashAttention 2 / FlashMLA helpers (split-KV combine, dQ/dKV convert, dot(dO, O))"),
    (r"Fmha\w{0,60}?(?:Combine|Convert\w{0,30}|OGradDotO)Kernel", "ck_tile FMHA helpers"),
    (r"ReduceSplitK|splitKreduce", "split-K reductions after a GEMM (CUTLASS, cuBLAS)"),
)

#: Lower-case words of which every match of :data:`TENSOR_CORE_PATTERNS` contains one: a name
#: with none of them is not searched further (most kernels are elementwise, reductions, copies).
#: A new pattern must keep this true (tests/test_tensor_cores.py checks it on its examples).
_HINT_WORDS: tuple[str, ...] = (
    "mma", "mfma", "884", "1688", "8816", "16816", "16832", "dgrad_1x1", "first_layer",
    "conv1x1", "conv2d_c1", "direct_group", "_tensor", "nvjet", "tensorop", "sm7", "sm8", "sm9",
    "sm1", "tcgen05", "gemm", "flash", "fmha", "cijk_", "xdl", "gtcx",
)

_HINTS = re.compile("|".join(re.escape(w) for w in _HINT_WORDS))
_ALL = re.compile("|".join(f"(?:{p})" for p, _ in TENSOR_CORE_PATTERNS))
_NOT = re.compile("|".join(f"(?:{p})" for p, _ in NOT_TENSOR_CORE_PATTERNS))


def _classify(name: object) -> bool:
    if not isinstance(name, str) or _HINTS.search(name.lower()) is None:
        return False
    return _ALL.search(name) is not None and _NOT.search(name) is None


@lru_cache(maxsize=65536)
def uses_tensor_cores(name: str) -> bool:
    """Whether a kernel of this name runs on Tensor Cores / Matrix Cores (by its name)."""
    return _classify(name)


def tensor_core_mask(names: list[str]) -> list[bool]:
    """:func:`uses_tensor_cores` of each name, each distinct name searched once."""
    seen: dict[object, bool] = {}
    out: list[bool] = []
    for name in names:
        try:
            hit = seen.get(name)
        except TypeError:  # unhashable: not a name
            out.append(False)
            continue
        if hit is None:
            hit = seen[name] = _classify(name)
        out.append(hit)
    return out
