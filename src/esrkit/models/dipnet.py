"""DIPNet (team MegSR): NTIRE 2023 Efficient SR runtime-track winner, 2nd overall.

Paper: L. Yu, X. Li, Y. Li, T. Jiang, Q. Wu, H. Fan, S. Liu, "DIPNet: Efficiency Distillation and Iterative
Pruning for Image Super-Resolution", CVPR Workshops 2023 (arXiv 2304.07018). Official code and weights:
``xiumu00/DIPNet`` (``models/DIPNet.py``, ``model_zoo/DIPNet.pth``).

DIPNet is an RLFN student trained with three tricks: distillation from a HAT teacher on "enhanced" HR targets,
re-parameterizable blocks (RRFB) that are folded back into RLFN blocks after training, and iterative L2 filter
pruning. The released network is the folded, pruned result: 44 feature channels, 4 blocks, and a
44→38→38→44 chain of 3×3 convs inside every block.

Layout (keys as in the release): 3×3 ``conv_1`` → ``block_1…block_4`` → 3×3 ``conv_2`` + ``conv_1`` output
→ ``upsampler`` (3×3 conv to ``3·s²`` channels → PixelShuffle). Block: ``c1_r``/``c2_r``/``c3_r`` each
followed by LeakyReLU(0.05), identity add, 1×1 ``c5``, RLFN's reduced ESA (16 channels). What the released
code fixes and the report leaves out:

* **No conv outside ESA has a bias** (``conv_1``, ``c1_r``…``c5``, ``conv_2`` and the upsampler conv are built
  with ``bias=False``); the ESA convs keep theirs. This is also what tells a DIPNet checkpoint from an RLFN one,
  whose keys are otherwise the same (``conv_1``, ``block_i.c1_r`` …), so DIPNet's detector runs first
  (``detect_order`` 90) and refuses any state dict with those biases;
* ESA is RLFN's reduced form (``conv1``, ``conv_f``, ``conv2``, ``conv3``, ``conv4``, no ReLU);
* the activation is an ``nn.LeakyReLU(0.05)`` module applied after each of the three 3×3 convs (so the
  challenge tool counts its elements in FLOPs), and there is no image-level skip, no mean shift, and the
  input range is [0, 1] (``data_range`` 1.0 in the authors' ``test_demo.py``).

Train form (esrkit's, because the authors' training code is not released): every 3×3 conv of a block is an
:class:`~esrkit.layers.reparam.rrrb.RRRB` (FMEN's 1×1 expand → 3×3 with identity → 1×1 squeeze, with an
identity around it where the widths allow), without biases, so that :func:`esrkit.models.reparameterize`
folds it into exactly the released deploy layout. The report calls this train-time block RRFB and shows its
branches only in a figure; DIPNet's paper prunes after folding, so its own RRFB ran at the unpruned width. Here
the RRRB branches are built at the pruned widths so that fine-tuning the released model with branches lands on
the released shapes. ``conv_1``, ``c5``, ``conv_2`` and the upsampler stay plain in both forms.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..layers import activation, conv, make_attention
from ..layers.reparam.rrrb import RRRB
from .detection import Shapes, count_indexed, has_keys, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, Variant, register_family


class RRFB(nn.Module):
    """DIPNet's block: RLFN's RLFB with bias-free convs whose 3×3s train as RRRBs (deploy: plain 3×3 convs)."""

    def __init__(self, num_feat: int, mid_channels: int, esa_channels: int, negative_slope: float,
                 rrrb_ratio: int) -> None:
        super().__init__()
        self.c1_r = RRRB(num_feat, mid_channels, 3, rrrb_ratio, bias=False)
        self.c2_r = RRRB(mid_channels, mid_channels, 3, rrrb_ratio, bias=False)
        self.c3_r = RRRB(mid_channels, num_feat, 3, rrrb_ratio, bias=False)
        self.c5 = conv(num_feat, num_feat, 1, bias=False)
        self.esa = make_attention("esa_reduced", num_feat, esa_channels=esa_channels)
        self.act = activation("lrelu", negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self.c1_r(x))
        out = self.act(self.c2_r(out))
        out = self.act(self.c3_r(out))
        return self.esa(self.c5(out + x))


class DIPNet(nn.Module):
    """DIPNet network; defaults are the released NTIRE 2023 entry (44 features, 38 inside blocks, 4 blocks)."""

    def __init__(self, scale: int = 4, num_feat: int = 44, mid_channels: int = 38, num_block: int = 4,
                 esa_channels: int = 16, negative_slope: float = 0.05, rrrb_ratio: int = 2) -> None:
        super().__init__()
        self.num_block = num_block
        self.conv_1 = conv(3, num_feat, 3, bias=False)
        for i in range(1, num_block + 1):
            self.add_module(f"block_{i}", RRFB(num_feat, mid_channels, esa_channels, negative_slope, rrrb_ratio))
        self.conv_2 = conv(num_feat, num_feat, 3, bias=False)
        # esrkit.layers.pixelshuffle_block always has a bias; DIPNet's upsampler conv has none (key 0.weight only).
        self.upsampler = nn.Sequential(conv(num_feat, 3 * scale * scale, 3, bias=False), nn.PixelShuffle(scale))

    def forward(self, x: Tensor) -> Tensor:
        shallow = self.conv_1(x)
        feat = shallow
        for i in range(1, self.num_block + 1):
            feat = getattr(self, f"block_{i}")(feat)
        return self.upsampler(self.conv_2(feat) + shallow)


def detect(s: Shapes) -> ModelConfig | None:
    """RLFN's key names without conv biases; ``c1_r.expand_conv`` marks the RRRB train form.

    A state dict with ``conv_1.bias`` or ``block_1.c5.bias`` is RLFN's (or another RLFN descendant's) and is
    left to those detectors.
    """
    if "conv_1.bias" in s or "block_1.c5.bias" in s:
        return None
    if not has_keys(s, "conv_1.weight", "block_1.c5.weight", "block_1.esa.conv1.weight", "upsampler.0.weight"):
        return None
    nf = s["conv_1.weight"][0]
    train = "block_1.c1_r.expand_conv.weight" in s
    hparams = {"num_feat": nf, "num_block": count_indexed(s, "block_{i}.c5.weight"),
               "esa_channels": s["block_1.esa.conv1.weight"][0]}
    if train:
        hparams["mid_channels"] = s["block_1.c1_r.reduce_conv.weight"][0]
        hparams["rrrb_ratio"] = s["block_1.c1_r.expand_conv.weight"][0] // nf
    elif has_keys(s, "block_1.c1_r.weight"):
        hparams["mid_channels"] = s["block_1.c1_r.weight"][0]
    else:
        return None
    return FAMILY.match(scale_from_channels(s["upsampler.0.weight"][0]), hparams, "train" if train else "deploy")


FAMILY = register_family(Family(
    name="dipnet",
    cls=DIPNet,
    paper="DIPNet: Efficiency Distillation and Iterative Pruning for Image Super-Resolution (CVPRW 2023)",
    # The released model was distilled and pruned for ×4 only; other scales would be a different, untrained net.
    variants={"dipnet": Variant({}, note="team MegSR, NTIRE 2023 Efficient SR runtime-track winner")},
    scales=(4,),
    # RLFN's reduced ESA: 15 px minimum, whole-map pooling. Half precision is safe: the official weights score Set5
    # ×4 Y-PSNR 31.807 dB in fp32, 31.807 in fp16 and 31.800 in bf16 (measured on CPU).
    capabilities=Capabilities(min_size=15, tile_exact=False),
    detect=detect,
    # Before RLFN (default 100): DIPNet's deploy keys are RLFN's minus the conv biases, and RLFN's detector looks
    # at key names only.
    detect_order=90,
))
