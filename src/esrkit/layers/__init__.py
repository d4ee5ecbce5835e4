"""Building blocks shared by the architecture families: one concept per module, imported rather than copied.

* :mod:`.conv`: 'same'-padded convs and activations by name;
* :mod:`.upsample`: pixel-shuffle tails;
* :mod:`.attention`: ESA, CCA and LKA, built by name with :func:`make_attention`;
* :mod:`.distill`: the feature-distillation trunk of the IMDN descendants;
* :mod:`.range`: the [0, 1] interface for networks trained on [0, 255];
* :mod:`.reparam`: re-parameterizable blocks and the kernel algebra that folds them.
"""

from .attention import ATTENTIONS, ESA, GLOBAL_ATTENTIONS, CCALayer, LargeKernelAttention, make_attention
from .conv import activation, conv
from .distill import DistillationBlock
from .range import RangeScaledNet
from .upsample import pixelshuffle_block

__all__ = [
    "ATTENTIONS",
    "ESA",
    "GLOBAL_ATTENTIONS",
    "CCALayer",
    "DistillationBlock",
    "LargeKernelAttention",
    "RangeScaledNet",
    "activation",
    "conv",
    "make_attention",
    "pixelshuffle_block",
]
