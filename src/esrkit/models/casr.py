"""CASR: cascade network with a channel-aligned structure (AIS 2024 real-time 4K SR, team Z6, best score).

Sources: the AIS 2024 RTSR survey (§3.4; Table 1: 0.026 M parameters, 2.10 GMACs at 540p, 0.468 ms) and the
authors' code ``rlghksdbs/CASR`` (``source/models/RepNetworkPlain.py``, ``RepConv_block.py``; the submission is
``RepNetwork_V012_BestStruct``: the V011 network with ``RepBlockV5`` blocks, m = 1 block, c = 32 channels, GELU,
conv biases on). The survey describes the layers only in a figure that did not survive; the layer order below is
the code's, and the released deploy checkpoint loads into it key for key.

Layout (× ``scale``, LR sides multiples of 3):

1. pixel-unshuffle by 3 (the RGB input becomes 27 channels at a third of the resolution, where all the heavy
   convs run: this is where the speed comes from);
2. ``head`` (27 → ``num_feat``, GELU), ``backbone`` (``num_block`` × ``num_feat`` → ``num_feat``, GELU) and a
   linear ``transition`` back to exactly 27 = 3·3² channels: the *channel alignment*, so that
3. a pixel shuffle by 3 turns the features back into an RGB-shaped residual at LR size, which is added to the
   input image itself;
4. ``input_conv2`` (a linear 3 → 3·s² conv on that corrected LR image) and a pixel shuffle by ``scale``: the
   second stage of the *cascade* of two sub-pixel upsamplings.

Train form: every conv is a ``RepBlock`` (the authors' ``RepBlockV5``) that sums two expand-then-squeeze
branches (3×3 to ``mid_channels`` = 256 then 1×1, and 3×3 to ``mid_channels2`` = 128 then 1×1) and a skip (the
identity where input and output widths agree, i.e. in the backbone, else a 1×1 conv ``conv1_res``). A 1×1 after
a 3×3 folds exactly, so :meth:`RepBlock.fused` returns one 3×3 conv: the deploy layout ``<name>.conv3x3``, as in
``model_x4_best_submission_deploy.pt``. The authors call ``RepBlockV5`` without a ``feature_size``, so its 256
default is the width of the first branch; the second branch's 128 is hard-coded there.

Where the sources differ or are silent:

* The survey says the bias of the re-parameterization blocks was switched off in the last training stage (−0.2 ms,
  −0.02 dB); the released deploy checkpoint still has every conv bias (26,203 parameters, which is the table's
  0.026 M), so ``bias`` defaults to True. ``bias=False`` builds the bias-free variant of the same code.
* The deploy file is a plain ``torch.save`` of an ``OrderedDict`` state dict (zip format, tensors saved on
  ``cuda:0``, no TorchScript code): ``torch.load(..., weights_only=True, map_location="cpu")`` reads it as is.
* The authors' blocks accept PReLU; its per-channel slopes would be deploy parameters, and no released CASR uses
  it, so ``act`` takes only the parameter-free activations.
* Input range is [0, 1] (the official weights reproduce the expected PSNR on [0, 1] input, no mean shift).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..errors import InputError
from ..layers import activation, conv
from ..layers.reparam.algebra import (
    FOLD_DTYPE,
    conv_params,
    fuse_sequential_kxk_1x1,
    identity_branch,
    sum_branches,
    to_conv2d,
)
from .detection import Shapes, count_indexed, has_keys, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, register_family

UNSHUFFLE = 3  # fixed by the architecture: head.conv3x3 takes 3·3² = 27 channels
_ACTS = ("gelu", "relu", "silu", "linear")


class ConvAct(nn.Module):
    """A 'same' 3×3 conv and its activation: the deploy form of a :class:`RepBlock` (the authors' ``Conv3X3``;
    key ``conv3x3``, the activations carry no parameters)."""

    def __init__(self, in_channels: int, out_channels: int, act: str = "linear", bias: bool = True) -> None:
        super().__init__()
        self.conv3x3 = conv(in_channels, out_channels, 3, bias=bias)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv3x3(x))


class RepBlock(nn.Module):
    """CASR's train-time block (``RepBlockV5``): ``act(squeeze(expand3x3(x)) + squeeze2(expand3x3_2(x)) + skip)``.

    Both branches are a 3×3 conv to a wide map followed by a 1×1 back to ``out_channels``; the skip is the
    identity when the widths agree, else a 1×1 conv. Everything before the activation is linear, so
    :meth:`fused` folds it into one 3×3 conv (:class:`ConvAct`) exactly.
    """

    def __init__(self, in_channels: int, out_channels: int, act: str = "linear", bias: bool = True,
                 mid_channels: int = 256, mid_channels2: int = 128) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.act_name, self.bias = in_channels, out_channels, act, bias
        self.conv0 = conv(in_channels, mid_channels, 3, bias=bias)
        self.conv1 = conv(mid_channels, out_channels, 1, bias=bias)
        self.conv0_b2 = conv(in_channels, mid_channels2, 3, bias=bias)
        self.conv1_b2 = conv(mid_channels2, out_channels, 1, bias=bias)
        self.with_identity = in_channels == out_channels
        self.conv1_res = None if self.with_identity else conv(in_channels, out_channels, 1, bias=bias)
        self.act = activation(act)

    def forward(self, x: Tensor) -> Tensor:
        skip = x if self.conv1_res is None else self.conv1_res(x)
        return self.act(self.conv1(self.conv0(x)) + self.conv1_b2(self.conv0_b2(x)) + skip)

    def fused(self) -> ConvAct:
        """The equivalent :class:`ConvAct` (folded in float64)."""
        dtype = self.conv0.weight.dtype
        branches = [fuse_sequential_kxk_1x1(conv_params(self.conv0, FOLD_DTYPE), conv_params(self.conv1, FOLD_DTYPE)),
                    fuse_sequential_kxk_1x1(conv_params(self.conv0_b2, FOLD_DTYPE),
                                            conv_params(self.conv1_b2, FOLD_DTYPE))]
        if self.conv1_res is None:
            branches.append(identity_branch(self.out_channels, 1, like=branches[0].weight))
        else:
            branches.append(conv_params(self.conv1_res, FOLD_DTYPE))
        out = ConvAct(self.in_channels, self.out_channels, self.act_name, self.bias)
        out.conv3x3 = to_conv2d(sum_branches(*branches), bias=self.bias, dtype=dtype)
        return out.to(device=self.conv0.weight.device).train(self.training)


class CASR(nn.Module):
    """CASR network in its train form (``RepBlock`` everywhere); :func:`esrkit.models.reparameterize` gives the
    deploy network of the released checkpoint."""

    def __init__(self, scale: int = 4, num_feat: int = 32, num_block: int = 1, mid_channels: int = 256,
                 mid_channels2: int = 128, act: str = "gelu", bias: bool = True) -> None:
        super().__init__()
        if act not in _ACTS:
            raise InputError(f"act must be one of {list(_ACTS)}, not {act!r}")
        if num_block < 0:
            raise InputError("num_block must be >= 0")
        colors = 3
        aligned = colors * UNSHUFFLE * UNSHUFFLE

        def block(i: int, o: int, a: str) -> RepBlock:
            return RepBlock(i, o, a, bias, mid_channels, mid_channels2)

        self.unshuffle = nn.PixelUnshuffle(UNSHUFFLE)
        self.head = block(aligned, num_feat, act)
        self.backbone = nn.Sequential(*(block(num_feat, num_feat, act) for _ in range(num_block)))
        # Authors' keys are transition.0.* and input_conv2.*: a one-element Sequential, then a bare block.
        self.transition = nn.Sequential(block(num_feat, aligned, "linear"))
        self.align = nn.PixelShuffle(UNSHUFFLE)
        self.input_conv2 = block(colors, colors * scale * scale, "linear")
        self.upsampler = nn.PixelShuffle(scale)

    def forward(self, x: Tensor) -> Tensor:
        feat = self.transition(self.backbone(self.head(self.unshuffle(x))))
        return self.upsampler(self.input_conv2(self.align(feat) + x))


def detect(s: Shapes) -> ModelConfig | None:
    """``head`` / ``transition.0`` / ``input_conv2`` blocks: ``conv3x3`` keys are the deploy form, ``conv0`` /
    ``conv0_b2`` the train form. The head must take the 27 pixel-unshuffled channels and the transition give
    them back (the channel alignment)."""
    if has_keys(s, "head.conv3x3.weight", "transition.0.conv3x3.weight", "input_conv2.conv3x3.weight"):
        form, first, last = "deploy", "conv3x3", "conv3x3"
    elif has_keys(s, "head.conv0.weight", "head.conv0_b2.weight", "transition.0.conv1.weight",
                  "input_conv2.conv1.weight"):
        form, first, last = "train", "conv0", "conv1"
    else:
        return None
    aligned = 3 * UNSHUFFLE * UNSHUFFLE
    if s[f"head.{first}.weight"][1] != aligned or s[f"transition.0.{last}.weight"][0] != aligned:
        return None
    hparams: dict[str, object] = {"num_feat": s[f"head.{last}.weight"][0],
                                  "num_block": count_indexed(s, f"backbone.{{i}}.{first}.weight"),
                                  "bias": f"head.{first}.bias" in s}
    if form == "train":  # the branch widths exist only before folding
        hparams |= {"mid_channels": s["head.conv0.weight"][0], "mid_channels2": s["head.conv0_b2.weight"][0]}
    return FAMILY.match(scale_from_channels(s[f"input_conv2.{last}.weight"][0]), hparams, form)


FAMILY = register_family(Family(
    name="casr",
    cls=CASR,
    paper="CASR: Efficient Cascade Network Structure with Channel Aligned method for 4K Real-Time Single Image "
          "Super-Resolution (AIS 2024 RTSR, team Z6)",
    variants={"casr": {}},
    # A ×4-only challenge (540p → 4K); the class builds other scales, but no such model was trained.
    scales=(4,),
    # Pixel-unshuffle by 3: LR sides must be multiples of 3. Tiles are not exact: the tiler starts tiles at any
    # offset, which regroups the unshuffled pixels (the network is shift-equivariant only by steps of 3).
    # Half precision keeps fidelity: the official weights score Set5 ×4 Y-PSNR (bicubic LR, AIS crop, CPU) 29.336 dB
    # in fp32, 29.335 in fp16 and 29.291 in bf16 (−0.044, inside the registry's 0.05 dB bar).
    capabilities=Capabilities(size_multiple=UNSHUFFLE, tile_exact=False),
    detect=detect,
    degradation="lanczos+avif",
))
