"""The bit-split of a positive float for the branch-free logarithms of the numba kernels.

q = 2**e * m with m in [sqrt(1/2), sqrt(2)), for float32 (scanner.features.kernels) and
float64 (scanner.features.extended_kernels) alike: integer work on the float's bits,
written as LLVM IR so that the loops around it still vectorise (numba's own integer
promotions would stop that). Both are for positive, normal q.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

# Per float type: the integer of its width, its mantissa bits, the bits of sqrt(1/2).
_LAYOUTS = {
    types.float32: (ir.IntType(32), ir.FloatType(), 23, 0x3F3504F3),
    types.float64: (ir.IntType(64), ir.DoubleType(), 52, 0x3FE6A09E667F3BCD),
}


def _split_ir(builder, q, layout):
    """IR for q = 2**e * m, m in [sqrt(1/2), sqrt(2)): returns (e as an integer of q's width, m)."""
    integer, real, mantissa_bits, sqrt_half_bits = layout
    bits = builder.bitcast(q, integer)
    e = builder.ashr(builder.sub(bits, ir.Constant(integer, sqrt_half_bits)), ir.Constant(integer, mantissa_bits))
    m = builder.bitcast(builder.sub(bits, builder.shl(e, ir.Constant(integer, mantissa_bits))), real)
    return e, m


@intrinsic
def exponent(typingctx, q):
    """e of q = 2**e * m, m in [sqrt(1/2), sqrt(2)), in q's float type (float32 or float64)."""
    layout = _LAYOUTS.get(q)
    if layout is None:
        return None

    def codegen(context, builder, signature, args):
        e, _ = _split_ir(builder, args[0], layout)
        return builder.sitofp(e, layout[1])

    return q(q), codegen


@intrinsic
def mantissa(typingctx, q):
    """m of q = 2**e * m, m in [sqrt(1/2), sqrt(2)), in q's float type (float32 or float64)."""
    layout = _LAYOUTS.get(q)
    if layout is None:
        return None

    def codegen(context, builder, signature, args):
        _, m = _split_ir(builder, args[0], layout)
        return m

    return q(q), codegen
