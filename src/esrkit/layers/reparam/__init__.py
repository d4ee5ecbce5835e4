"""Structural re-parameterization: multi-branch training blocks with one ``fused()`` contract, and the kernel
algebra they fold with.

Contract: a block that trains with extra linear branches defines ``fused() -> nn.Module`` returning a module
that computes the same function with its branches folded (only rounding differs; folds run in float64) and
keeps the block's train/eval mode. :func:`esrkit.models.reparameterize` replaces every such submodule by what
``fused()`` returns, innermost first.
"""

from .algebra import (
    FOLD_DTYPE,
    Kernel,
    conv_params,
    fold_1x1_into_kxk,
    fuse_conv_bn,
    fuse_sequential_1x1_kxk,
    grouped_to_dense,
    identity_branch,
    identity_kernel,
    pad_kernel,
    sum_branches,
    to_conv2d,
)
from .bsconv import BSConvU, BSConvURep
from .upsampler import RepUpsampler

__all__ = [
    "FOLD_DTYPE",
    "BSConvU",
    "BSConvURep",
    "Kernel",
    "RepUpsampler",
    "conv_params",
    "fold_1x1_into_kxk",
    "fuse_conv_bn",
    "fuse_sequential_1x1_kxk",
    "grouped_to_dense",
    "identity_branch",
    "identity_kernel",
    "pad_kernel",
    "sum_branches",
    "to_conv2d",
]
