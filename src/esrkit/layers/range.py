"""The [0, 1] interface of every esrkit model, for networks trained on another pixel range."""

from __future__ import annotations

from torch import Tensor, nn


class RangeScaledNet(nn.Module):
    """Base class of networks whose weights expect pixels in [0, ``img_range``] (255 for the EDSR-framework
    families such as RFDN and RLFN).

    esrkit models take and return [0, 1]; a subclass implements :meth:`forward_scaled` on the network's own
    range and this class multiplies the input by ``img_range`` before it and divides the output after it. With
    ``img_range`` 1 nothing is multiplied, so the graph (and the challenges' counters, which see only modules)
    is exactly the authors'. The default of ``img_range`` in a subclass's signature is the single statement of
    the range its official weights were trained on.
    """

    def __init__(self, img_range: float = 1.0) -> None:
        super().__init__()
        self.img_range = float(img_range)

    def forward(self, x: Tensor) -> Tensor:
        if self.img_range == 1.0:
            return self.forward_scaled(x)
        return self.forward_scaled(x * self.img_range) / self.img_range

    def forward_scaled(self, x: Tensor) -> Tensor:
        """The network on input already in [0, ``img_range``]."""
        raise NotImplementedError
