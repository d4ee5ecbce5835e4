"""Bias removal: the exact part (folds) and the inexact part (an explicit, reported training step).

What the challenge teams mean by it (``docs/notes``):

* AIS 2024 RepTCN (§4.1a): after the RepBlock is re-parameterized into one conv (stage 2), stage 3 "remove[s]
  bias from each conv" and fine-tunes for 2000k iterations;
* AIS 2024 Lanczos++ (§4.2): convs have no bias; its stage 2, "deviation removal of convolutional layers", is bias
  removal, trained with L1;
* AIS 2024 CASR (§4.4): "turn off the bias term of the reparametrization block" in stages 2-3, worth −0.2 ms of
  runtime for −0.02 dB (the survey's cross-cutting table lists these three as "bias removal for speed");
* NTIRE 2023 NJUST_R (§4.17): "disable the bias of all convs".

None of these is a fold: a bias is an affine offset that no bias-free conv reproduces, so dropping it changes the
function and the fine-tuning stage that follows recovers what was lost. What esrkit offers:

* :func:`remove_conv_biases` — the step itself: every ``Conv2d`` of a model loses its bias, and the report says
  how large each dropped bias was (what the fine-tuning has to make up for). Apply it to the *deploy* form
  (:func:`esrkit.models.reparameterize` first, as RepTCN does): in a train-form block, BatchNorm shifts and the
  inner biases of sequential branches would fold back into a bias anyway.
* :class:`RepConv` with ``bn=False, bias=False`` (:mod:`.repconv`) — CASR's "reparameterization block with its
  bias turned off": its fused conv has no bias, exactly.
* :func:`absorb_bias` — the case where removal *is* exact: a conv's bias moves into the next conv when nothing
  non-linear sits between and the next conv sees no zero padding (a 1×1, or a padding-free conv). Behind a zero-
  padded k×k the border would see 0 instead of the bias, so that case is refused rather than approximated.
* :class:`ConvChannelBias` — a bias-free conv followed by a separate per-channel bias (:class:`ChannelBias`) that a
  training schedule can switch off: with the bias on, :meth:`~ConvChannelBias.fused` folds the pair exactly into
  one biased ``Conv2d``; with it off, into a bias-free one, so "bias removed" is a state of the same block rather
  than a different architecture.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..conv import conv
from .algebra import FOLD_DTYPE, Kernel, conv_params, grouped_to_dense, to_conv2d


def remove_conv_biases(model: nn.Module, names: Iterable[str] | None = None, *,
                       inplace: bool = False) -> tuple[nn.Module, dict[str, float]]:
    """Drop the bias of every ``nn.Conv2d`` in ``model`` (or of the named ones): the "bias removal" stage.

    Not function-preserving (module docstring): the returned report maps each conv's name to the largest
    ``|bias|`` it lost, 0.0 where the bias was already zero, so a caller can see the size of the change before
    fine-tuning. Returns ``(model, report)``; the model is a copy unless ``inplace``.
    """
    target = model if inplace else copy.deepcopy(model)
    wanted = None if names is None else set(names)
    convs = {name: m for name, m in target.named_modules() if isinstance(m, nn.Conv2d)}
    if wanted is not None:
        unknown = sorted(wanted - set(convs))
        if unknown:
            raise ValueError(f"no Conv2d named {', '.join(unknown)} in the model")
    report: dict[str, float] = {}
    for name, module in convs.items():
        if (wanted is not None and name not in wanted) or module.bias is None:
            continue
        report[name] = float(module.bias.detach().abs().max()) if module.bias.numel() else 0.0
        module.bias = None
    return target, report


def absorb_bias(first: nn.Conv2d, second: nn.Conv2d) -> tuple[nn.Conv2d, nn.Conv2d]:
    """Move ``first``'s bias into ``second`` for ``second(first(x))`` with nothing in between; exact.

    ``second(W1·x + b1) = second(W1·x) + Σ W2·b1`` holds at every output pixel only if every tap of ``second``
    reads a real pixel of ``first``'s output, i.e. ``second`` has no padding (a 1×1, or a 'valid' k×k); a zero-
    padded conv would see 0 instead of ``b1`` at the border, so it raises ``ValueError``. Returns new modules
    (``first`` without bias, ``second`` with the combined bias); the inputs are untouched.
    """
    if first.bias is None:
        return copy.deepcopy(first), copy.deepcopy(second)
    padding = second.padding
    if isinstance(padding, str):  # "valid", or "same" (which pads nothing only for a 1x1)
        padded = padding == "same" and tuple(second.kernel_size) != (1, 1)
    else:
        padded = any(p != 0 for p in padding)
    if padded:
        raise ValueError("absorbing a bias into a zero-padded conv is not exact at the borders "
                         f"(second conv has padding {second.padding}); only 1x1 or padding-free convs absorb it")
    if second.in_channels != first.out_channels:
        raise ValueError(f"second conv takes {second.in_channels} channels, first gives {first.out_channels}")
    dtype = second.weight.dtype
    b1 = first.bias.detach().to(FOLD_DTYPE)
    w2, b2 = conv_params(second, FOLD_DTYPE)
    dense = grouped_to_dense(w2, second.groups)
    new_bias = b2 + torch.einsum("omhw,m->o", dense, b1)
    out_first = copy.deepcopy(first)
    out_first.bias = None
    out_second = copy.deepcopy(second)
    if out_second.bias is None:
        out_second.bias = nn.Parameter(new_bias.to(dtype))
    else:
        with torch.no_grad():
            out_second.bias.copy_(new_bias.to(dtype))
    return out_first, out_second


class ChannelBias(nn.Module):
    """A learnable per-channel offset ``y = x + b`` that can be switched off (``enabled = False``).

    Switching off is the bias-removal step of a training schedule: the offset stops being added (its value is
    kept, so it can be switched back on); an enclosing :class:`ConvChannelBias` then folds to a bias-free conv.
    """

    def __init__(self, channels: int, enabled: bool = True) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.enabled = enabled

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bias.reshape(1, -1, 1, 1) if self.enabled else x


class ConvChannelBias(nn.Module):
    """A bias-free 'same'-padded conv followed by a separate :class:`ChannelBias`; ``fused()`` is one ``Conv2d``.

    A per-channel offset after a conv is exactly the conv's own bias (it is added after the spatial sum, so
    borders play no role), so the fold is exact; keeping it separate only gives a schedule a handle on the bias
    alone. With the bias switched off the fused conv has ``bias=None``. Keys ``conv.weight``, ``bias.bias``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, groups: int = 1) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"ConvChannelBias needs an odd kernel size ('same' padding), got {kernel_size}")
        self.groups = groups
        self.conv = conv(in_channels, out_channels, kernel_size, bias=False, groups=groups)
        self.bias = ChannelBias(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.bias(self.conv(x))

    def kernel(self, dtype: torch.dtype = FOLD_DTYPE) -> Kernel:
        """``(weight, bias)`` of the pair; the bias is zero while switched off."""
        weight, _ = conv_params(self.conv, dtype)
        bias = self.bias.bias.detach().to(dtype)
        return Kernel(weight, bias if self.bias.enabled else torch.zeros_like(bias))

    def fused(self) -> nn.Conv2d:
        """One ``nn.Conv2d``: with the bias (enabled) or without it (switched off)."""
        weight = self.conv.weight
        out = to_conv2d(self.kernel(), groups=self.groups, bias=self.bias.enabled, dtype=weight.dtype)
        return out.to(weight.device).train(self.training)
