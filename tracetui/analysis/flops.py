"""What an operator computes and moves: FLOPs and bytes of one occurrence, from its args.

The formulas are PyTorch's own (``with_flops``, ``torch/csrc/profiler/util.cpp``
``computeFlops``) where PyTorch has one, and TraceLens's (``PerfModel/perf_model.py``) or the
FlashAttention papers' otherwise:

- ``aten::mm`` ``A[M,K] @ B[K,N]``: 2·M·N·K. ``aten::addmm(bias, A, B)``: 2·M·N·K from inputs
  2 and 3 — PyTorch does not count the bias add (TraceLens adds M·N; we follow PyTorch).
- ``aten::bmm`` ``A[B,M,K] @ B[B,K,N]`` and ``aten::baddbmm(bias, A, B)``: 2·B·M·N·K.
- ``aten::_scaled_mm`` (FP8) and ``aten::_scaled_grouped_mm``/``aten::_grouped_mm`` where the
  shapes give every group: 2·M·N·K summed.
- ``aten::linear(x[..., K], W[N, K], bias)``: 2·prod(x[:-1])·N·K; ``aten::matmul``: with
  numpy's broadcasting, 2·batch·M·N·K. (Parents of ``mm``/``addmm``: their row counts the
  same work again, as each operator's row does.)
- Convolution forward (``aten::conv1d/2d/3d``, ``aten::convolution``, ``aten::_convolution``,
  and the backends' ``aten::cudnn_convolution``, ``aten::miopen_convolution``,
  ``aten::mkldnn_convolution``, each with its own argument order):
  2·N·(output positions)·(kernel positions)·(C_in / groups)·C_out, the output size from the
  stride, padding and dilation in ``Concrete Inputs`` — unknown (``None``) without them (the
  2021 schema). ``aten::convolution_backward``: the forward's FLOPs once for the input's
  gradient and once for the weight's, as its output mask asks.
- Attention forward (``aten::scaled_dot_product_attention``,
  ``aten::_scaled_dot_product_{flash,efficient,cudnn}_attention``,
  ``aten::_flash_attention_forward``, ``aten::_efficient_attention_forward``;
  ``q[B,Hq,Nq,d]``, ``k[B,Hkv,Nkv,d]``, ``v[B,Hkv,Nkv,dv]``): B·Hq·2·Nq·Nkv·(d + dv) (the two
  GEMMs, FlashAttention's count), halved when causal; the backward ops 2.5× the forward.

Bytes: the tensor inputs read plus the output written once (an output's shape from the
formula's own dimensions), element sizes from ``Input type``: the least a kernel must move,
the x of a roofline. Pure: no numpy needed.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

#: element sizes of the tensor types PyTorch writes in ``Input type`` (and Kineto's
#: ``dtype`` of a collective), lower-cased, ``c10::`` dropped
ELEMENT_BYTES = {
    "float": 4, "double": 8, "c10::half": 2, "half": 2, "c10::bfloat16": 2, "bfloat16": 2,
    "long int": 8, "long": 8, "int64": 8, "int": 4, "int32": 4, "short int": 2, "short": 2,
    "int16": 2, "signed char": 1, "char": 1, "unsigned char": 1, "byte": 1, "bool": 1,
    "int8": 1, "uint8": 1, "float8_e4m3fn": 1, "float8_e5m2": 1, "float8_e4m3fnuz": 1,
    "float8_e5m2fnuz": 1, "float8_e8m0fnu": 1, "float4_e2m1fn_x2": 1,
    "c10::complex<float>": 8, "complexfloat": 8, "c10::complex<double>": 16,
    "complexdouble": 16, "float32": 4, "float64": 8, "float16": 2,
}


def element_bytes(type_name: Any) -> int | None:
    """Bytes per element of a PyTorch type name (``float``, ``c10::BFloat16``, ``BFloat16``,
    ``c10::Float8_e4m3fn``…), None if unknown."""
    if not isinstance(type_name, str):
        return None
    t = type_name.strip().lower()
    if t.startswith("c10::") and t not in ELEMENT_BYTES:
        t = t[5:]
    return ELEMENT_BYTES.get(t)


@dataclass(frozen=True)
class Cost:
    flops: int
    bytes: int | None  # None: an element type unknown
    dtype: str  # the first tensor input's type as the trace writes it ("" if none)


def _dims(v: Any) -> list[int] | None:
    if isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0
                                   for x in v):
        return v
    return None


def _prod(xs: Sequence[int]) -> int:
    return math.prod(xs) if xs else 1


def _concrete(args: dict, k: int) -> Any:
    """Input ``k``'s concrete value (``Concrete Inputs``: ``'[2, 2]'``, ``'1'``, ``'False'``),
    parsed; None where absent or empty."""
    ci = args.get("Concrete Inputs")
    if not isinstance(ci, list) or k >= len(ci):
        return None
    v = ci[k]
    if isinstance(v, str):
        v = v.strip()
        if not v:
            return None
        if v in ("True", "False"):
            return v == "True"
        try:
            return ast.literal_eval(v)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            return None
    return v


class _In:
    """An occurrence's inputs: dims, types and concrete values."""

    def __init__(self, args: dict) -> None:
        d = args.get("Input Dims", args.get("Input dims"))
        t = args.get("Input type")
        self.args = args
        self.dims: list[Any] = d if isinstance(d, list) else []
        self.types: list[Any] = t if isinstance(t, list) else []

    def shape(self, k: int) -> list[int] | None:
        return _dims(self.dims[k]) if k < len(self.dims) else None

    def esize(self, k: int) -> int | None:
        return element_bytes(self.types[k]) if k < len(self.types) else None

    def type(self, k: int) -> str:
        t = self.types[k] if k < len(self.types) else ""
        return t if isinstance(t, str) else ""

    def nbytes(self, k: int) -> int | None:
        s, e = self.shape(k), self.esize(k)
        return None if s is None or e is None else _prod(s) * e

    def concrete(self, k: int) -> Any:
        return _concrete(self.args, k)


def _total(parts: Sequence[int | None]) -> int | None:
    return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)


def _gemm(a: int, b: int, bias: int | None = None) -> Callable[[_In], Cost | None]:
    def f(x: _In) -> Cost | None:
        A, B = x.shape(a), x.shape(b)
        if A is None or B is None or len(A) != len(B) or len(A) not in (2, 3):
            return None
        if len(A) == 2:
            (m, k), (k2, n), batch = A, B, 1
        else:
            (batch, m, k), (b2, k2, n) = A, B
            if b2 != batch:
                return None
        if k2 != k:
            return None
        e = x.esize(a)
        out = None if e is None else batch * m * n * e
        return Cost(2 * batch * m * n * k,
                    _total([x.nbytes(a), x.nbytes(b), out]
                           + ([x.nbytes(bias)] if bias is not None else [])), x.type(a))
    return f


def _matmul(x: _In) -> Cost | None:
    A, B = x.shape(0), x.shape(1)
    if not A or not B:
        return None
    a = [1] + A if len(A) == 1 else A  # a vector: a row, dropped from the output
    b = B + [1] if len(B) == 1 else B
    m, k = a[-2], a[-1]
    k2, n = b[-2], b[-1]
    if k != k2:
        return None
    ba, bb = a[:-2], b[:-2]
    width = max(len(ba), len(bb))
    ba, bb = [1] * (width - len(ba)) + ba, [1] * (width - len(bb)) + bb
    batch = []
    for p, q in zip(ba, bb):
        if p != q and 1 not in (p, q):
            return None
        batch.append(max(p, q))
    nb = _prod(batch)
    e = x.esize(0)
    return Cost(2 * nb * m * n * k,
                _total([x.nbytes(0), x.nbytes(1), None if e is None else nb * m * n * e]),
                x.type(0))


def _linear(x: _In) -> Cost | None:
    X, W = x.shape(0), x.shape(1)
    if not X or W is None or len(W) != 2 or W[1] != X[-1]:
        return None
    rows, (n, k) = _prod(X[:-1]), W
    e = x.esize(0)
    parts = [x.nbytes(0), x.nbytes(1), None if e is None else rows * n * e]
    if x.shape(2):
        parts.append(x.nbytes(2))
    return Cost(2 * rows * n * k, _total(parts), x.type(0))


def _conv_flops(inp: list[int], w: list[int], stride: Any, pad: Any, dil: Any,
                groups: Any, out_spatial: list[int] | None = None) -> tuple[int, list[int]] | None:
    """(forward FLOPs, output dims) of a convolution, or None."""
    nd = len(w) - 2
    if nd < 1 or len(inp) != nd + 2 or not isinstance(groups, int) or groups < 1:
        return None
    n, cin, cout = inp[0], inp[1], w[0]
    ks = w[2:]
    if out_spatial is None:
        def per_dim(v: Any) -> list[int] | None:
            if isinstance(v, int) and not isinstance(v, bool):
                return [v] * nd
            if isinstance(v, (list, tuple)) and all(isinstance(i, int) for i in v):
                if len(v) == 1:
                    return list(v) * nd
                return list(v) if len(v) == nd else None
            return None
        s, p, d = per_dim(stride), per_dim(pad), per_dim(dil)
        if s is None or p is None or d is None or min(s) < 1:
            return None
        out_spatial = [(h + 2 * pp - dd * (kk - 1) - 1) // ss + 1
                       for h, pp, dd, kk, ss in zip(inp[2:], p, d, ks, s)]
        if min(out_spatial) < 0:
            return None
    flops = 2 * n * _prod(out_spatial) * _prod(ks) * (cin // groups) * cout
    return flops, [n, cout] + out_spatial


def _conv(stride_at: int, groups_at: int, pad_at: int | None = None,
          bias: bool = True) -> Callable[[_In], Cost | None]:
    """A convolution whose stride, padding and dilation are inputs ``stride_at`` and the
    two after it (or padding first: ``pad_at``, then stride and dilation)."""
    if pad_at is None:
        at = (stride_at, stride_at + 1, stride_at + 2)
    else:
        at = (stride_at, pad_at, pad_at + 2)

    def f(x: _In) -> Cost | None:
        inp, w = x.shape(0), x.shape(1)
        if inp is None or w is None:
            return None
        got = _conv_flops(inp, w, x.concrete(at[0]), x.concrete(at[1]), x.concrete(at[2]),
                          x.concrete(groups_at))
        if got is None:
            return None
        flops, out = got
        e = x.esize(0)
        parts = [x.nbytes(0), x.nbytes(1), None if e is None else _prod(out) * e]
        if bias and x.shape(2):
            parts.append(x.nbytes(2))
        return Cost(flops, _total(parts), x.type(0))
    return f


def _conv_backward(x: _In) -> Cost | None:
    # convolution_backward(grad_output, input, weight, bias_sizes, stride, padding,
    #                      dilation, transposed, output_padding, groups, output_mask)
    go, inp, w = x.shape(0), x.shape(1), x.shape(2)
    groups, mask, transposed = x.concrete(9), x.concrete(10), x.concrete(7)
    if go is None or inp is None or w is None or transposed is True:
        return None
    got = _conv_flops(inp, w, 1, 0, 1, groups, out_spatial=go[2:])
    if got is None:
        return None
    if not (isinstance(mask, list) and len(mask) >= 2):
        mask = [True, True]
    times = int(bool(mask[0])) + int(bool(mask[1]))
    parts = [x.nbytes(0), x.nbytes(1), x.nbytes(2)]
    if mask[0]:
        parts.append(x.nbytes(1))
    if mask[1]:
        parts.append(x.nbytes(2))
    return Cost(got[0] * times, _total(parts), x.type(0))


def _attention(causal_at: int | None, backward: bool = False,
               q_at: int = 0) -> Callable[[_In], Cost | None]:
    def f(x: _In) -> Cost | None:
        q, k, v = x.shape(q_at), x.shape(q_at + 1), x.shape(q_at + 2)
        if q is None or k is None or v is None or not (len(q) == len(k) == len(v) == 4):
            return None
        b, hq, nq, d = q
        nkv, dv = k[2], v[3]
        if k[0] != b or v[0] != b or k[3] != d or v[2] != nkv:
            return None
        flops = b * hq * 2 * nq * nkv * (d + dv)
        if causal_at is not None and x.concrete(causal_at) is True:
            flops //= 2
        e = x.esize(q_at)
        out = None if e is None else b * hq * nq * dv * e
        parts = [x.nbytes(q_at), x.nbytes(q_at + 1), x.nbytes(q_at + 2), out]
        if backward:
            flops = flops * 5 // 2
            parts += [x.nbytes(q_at), x.nbytes(q_at + 1), x.nbytes(q_at + 2)]  # the grads
        return Cost(flops, _total(parts), x.type(q_at))
    return f


def _grouped_mm(x: _In) -> Cost | None:
    # _grouped_mm(mat_a, mat_b, offs, bias, out_dtype): a 3-D operand gives every group;
    # with offsets (2-D x 2-D or 2-D x 3-D) the split of M or K is not in the shapes,
    # but the total is: 2·M_total·N·K for [M,K] x [G,K,N]
    A, B = x.shape(0), x.shape(1)
    if A is None or B is None:
        return None
    if len(A) == 3 and len(B) == 3 and A[0] == B[0] and A[2] == B[1]:
        g, m, k = A
        n = B[2]
        flops = 2 * g * m * n * k
        rows = g * m
    elif len(A) == 2 and len(B) == 3 and A[1] == B[1]:
        m, k = A
        n = B[2]
        flops = 2 * m * n * k
        rows = m
    else:
        return None
    e = x.esize(0)
    e = 2 if e == 1 else e  # FP8 in, BF16 out
    return Cost(flops, _total([x.nbytes(0), x.nbytes(1), None if e is None else rows * n * e]),
                x.type(0))


def _arity(lo: int, hi: int, f: Callable[[_In], Cost | None]) -> Callable[[_In], Cost | None]:
    """``f`` where the op has ``lo`` to ``hi`` inputs: rows with other counts exist (HTA's
    sampled trace has ``aten::linear`` with 4 to 18 ``Input Dims``, ``aten::matmul`` with 3
    to 14) and their first two shapes are not the operands."""
    def g(x: _In) -> Cost | None:
        return f(x) if lo <= len(x.dims) <= hi else None
    return g


#: operator name -> its formula
FORMULAS: dict[str, Callable[[_In], Cost | None]] = {
    "aten::mm": _arity(2, 2, _gemm(0, 1)),
    "aten::addmm": _arity(3, 5, _gemm(1, 2, bias=0)),
    "aten::bmm": _arity(2, 2, _gemm(0, 1)),
    "aten::baddbmm": _arity(3, 5, _gemm(1, 2, bias=0)),
    "aten::_scaled_mm": _gemm(0, 1),
    "aten::_grouped_mm": _grouped_mm,
    "aten::_scaled_grouped_mm": _grouped_mm,
    "aten::matmul": _arity(2, 2, _matmul),
    "aten::linear": _arity(2, 3, _linear),
    # (input, weight, bias, stride, padding, dilation, groups)
    "aten::conv1d": _conv(3, 6),
    "aten::conv2d": _conv(3, 6),
    "aten::conv3d": _conv(3, 6),
    # (input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
    "aten::convolution": _conv(3, 8),
    "aten::_convolution": _conv(3, 8),
    "aten::convolution_backward": _conv_backward,
    # the backends' own ops, children of aten::convolution (where the kernels are launched):
    # (input, weight, bias, padding, stride, dilation, groups, ...)
    "aten::miopen_convolution": _conv(4, 6, pad_at=3),
    "aten::mkldnn_convolution": _conv(4, 6, pad_at=3),
    # (input, weight, padding, stride, dilation, groups, ...): no bias
    "aten::cudnn_convolution": _conv(3, 5, pad_at=2, bias=False),
    # (query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)
    "aten::scaled_dot_product_attention": _attention(5),
    # (query, key, value, dropout_p, is_causal, return_debug_mask, scale)
    "aten::_scaled_dot_product_flash_attention": _attention(4),
    "aten::_scaled_dot_product_flash_attention_for_cpu": _attention(4),
    # (query, key, value, attn_bias, compute_log_sumexp, dropout_p, is_causal, scale)
    "aten::_scaled_dot_product_efficient_attention": _attention(6),
    # (query, key, value, attn_bias, compute_log_sumexp, dropout_p, is_causal, ...)
    "aten::_scaled_dot_product_cudnn_attention": _attention(6),
    # (grad_out, query, key, value, out, logsumexp, cum_seq_q, cum_seq_k, max_q, max_k,
    #  dropout_p, is_causal, ...)
    "aten::_scaled_dot_product_flash_attention_backward": _attention(11, True, q_at=1),
    # (grad_out, query, key, value, out, logsumexp, dropout_p, is_causal, ...) (CPU)
    "aten::_scaled_dot_product_flash_attention_for_cpu_backward": _attention(7, True, q_at=1),
    # (grad_out, query, key, value, attn_bias, out, logsumexp, philox_seed, philox_offset,
    #  dropout_p, grad_input_mask, is_causal, ...)
    "aten::_scaled_dot_product_efficient_attention_backward": _attention(11, True, q_at=1),
}


#: the args the formulas read
INPUT_FIELDS = ("Input Dims", "Input dims", "Input type", "Concrete Inputs")


def op_cost(name: str, args: Any) -> Cost | None:
    """FLOPs and bytes of one occurrence of operator ``name`` with ``args``, or None where
    the operator has no formula or its args do not give the shapes."""
    f = FORMULAS.get(name)
    if f is None or not isinstance(args, dict):
        return None
    try:
        return f(_In(args))
    except (TypeError, ValueError, IndexError, ZeroDivisionError, OverflowError):
        return None


def has_formula(name: str) -> bool:
    return name in FORMULAS
