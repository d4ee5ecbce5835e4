"""Convolutions and activations as every efficient-SR codebase writes them."""

from __future__ import annotations

from torch import nn


def conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, bias: bool = True,
         groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    """A 2-D convolution with 'same' padding for odd kernels (the convention of every efficient-SR
    codebase)."""
    padding = (kernel_size - 1) // 2 * dilation
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias,
                     groups=groups, dilation=dilation)


def activation(name: str, negative_slope: float = 0.05, inplace: bool = True) -> nn.Module:
    """Build an activation by name.

    The efficient-SR codebases pick activations by string in their configs (``"lrelu"`` with slope 0.05 in
    IMDN/RFDN/RLFN, 0.1 in MSRResNet); one helper keeps those choices readable and lets a hyper-parameter
    switch them. ``inplace`` defaults to True because the official code runs that way and peak GPU memory is
    a ranked challenge metric; pass False where the pre-activation tensor is still needed.
    """
    key = name.lower()
    if key == "relu":
        return nn.ReLU(inplace=inplace)
    if key in ("lrelu", "leakyrelu"):
        return nn.LeakyReLU(negative_slope, inplace=inplace)
    if key == "prelu":
        return nn.PReLU(init=negative_slope)
    if key == "gelu":
        return nn.GELU()
    if key in ("silu", "swish"):
        return nn.SiLU(inplace=inplace)
    if key in ("identity", "none", "linear"):
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r} (expected relu, lrelu, prelu, gelu, silu or identity)")
