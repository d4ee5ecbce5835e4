"""URPNet ("Unshuffle, Re-parameterization, Pointwise"), team 402Lab (KETI / Korea Aerospace Univ.), AIS 2024 §3.12.

Survey text (``seed-ais2024.md`` §4.12): **pixel unshuffle** of the input, **RepConv layers**, and a **1×1
point-wise conv only in the last layer** instead of RepConv everywhere; trained with a QP curriculum and output
distillation. Team figures: **0.15 K MACs per (4K) pixel, 1.2483 GFLOPs**; Table 1: **0.009 M parameters (the
fewest), 1.24 GMACs (the fewest)**, the team's 1.2483 G cut to two decimals (the table rounds its other rows).
No code, weights or figure of the layout are available.

Reading. The figures fix almost everything once the unshuffle factor is 2 (×4 from a half-size map needs a
×8 pixel shuffle, 3·8² = 192 output channels): at 960×540 (129,600 positions after the unshuffle) 1.2483 G is
9,632 MACs per position, and 0.009 M leaves room only for bias-free convs. Three 16-channel RepConv layers and
the point-wise output, ``12 → 16 → 16 → 16 → 192``, make 9,408 parameters (0.009 M) and 9,408 conv MACs per
position; the remaining 224 = 16 + 16 + 192 per position are activation elements the challenge tool counts. So:

``PixelUnshuffle(2)`` → ``layers.0`` RepConv 3×3 (12→16) → ReLU → ``layers.1`` RepConv (16→16) → ReLU →
``layers.2`` RepConv (16→16, linear) → ``pointwise`` 1×1 (16→192) → ReLU → ``PixelShuffle(8)``.

Which two of the three RepConvs are activated is not determined by the counts (any two give the same figure); the
head and the first body layer are, as in the CASR template of the same institute (KETI, team Z6), where the last
RepConv before the output is linear. The ReLU on the 192 output channels is what the counts require (without
it: 1.23 G, 1.8 % below the team's 1.2483 G); it clips negative output values before the shuffle. Biases: with
them the count would be 9,648 (0.010 M), so all convs are bias-free, as CASR (also KETI) turned off its
re-parameterization biases.

RepConv: :class:`~esrkit.layers.reparam.repconv.RepConv` with 3×3 + 1×1 branches and an identity where the
widths allow, without BatchNorm or biases, so it folds into exactly the bias-free inference convs.
LR sides must be even (the unshuffle).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..layers import conv
from ..layers.reparam.repconv import RepConv
from .detection import Shapes, count_indexed, scale_from_channels
from .registry import Capabilities, Family, ModelConfig, Variant, register_family


class URPNet(nn.Module):
    """URPNet; ``num_layers`` RepConv layers of ``channels`` channels, the last ``linear_tail`` of them without an
    activation, then the activated point-wise output conv."""

    def __init__(self, scale: int = 4, down: int = 2, channels: int = 16, num_layers: int = 3,
                 linear_tail: int = 1) -> None:
        super().__init__()
        if not 0 <= linear_tail <= num_layers or num_layers < 1:
            raise ValueError(f"need num_layers >= 1 and 0 <= linear_tail <= num_layers, got {num_layers}, "
                             f"{linear_tail}")
        self.unshuffle = nn.PixelUnshuffle(down)
        widths = [3 * down * down] + [channels] * num_layers
        self.layers = nn.ModuleList(
            RepConv(widths[i], widths[i + 1], 3, one_by_one=True, identity=widths[i] == widths[i + 1], bn=False,
                    bias=False)
            for i in range(num_layers))
        self.acts = nn.ModuleList(nn.ReLU(inplace=True) for _ in range(num_layers - linear_tail))
        self.pointwise = conv(channels, 3 * (down * scale) ** 2, 1, bias=False)
        self.out_act = nn.ReLU(inplace=True)
        self.shuffle = nn.PixelShuffle(down * scale)

    @staticmethod
    def adjust_capabilities(caps: Capabilities, hparams: dict) -> Capabilities:
        """The LR size multiple is the unshuffle factor."""
        return Capabilities(caps.min_size, int(hparams["down"]), caps.tile_exact, caps.fp16, caps.bf16)

    def forward(self, x: Tensor) -> Tensor:
        y = self.unshuffle(x)
        for i, layer in enumerate(self.layers):
            y = layer(y)
            if i < len(self.acts):
                y = self.acts[i](y)
        return self.shuffle(self.out_act(self.pointwise(y)))


def detect(s: Shapes) -> ModelConfig | None:
    """Only ``layers.{i}`` 3×3 convs (RepConv branches: train form) and a 1×1 ``pointwise``."""
    if "pointwise.weight" not in s or s["pointwise.weight"][2:] != (1, 1):
        return None
    train = "layers.0.rbr_dense.conv.weight" in s
    pattern = "layers.{i}.rbr_dense.conv.weight" if train else "layers.{i}.weight"
    num_layers = count_indexed(s, pattern)
    expected = {"pointwise.weight"}
    for i in range(num_layers):
        expected |= ({f"layers.{i}.rbr_dense.conv.weight", f"layers.{i}.rbr_1x1.conv.weight"} if train
                     else {f"layers.{i}.weight"})
    if num_layers < 1 or set(s) != expected:
        return None
    first = s["layers.0.rbr_dense.conv.weight" if train else "layers.0.weight"]
    down = scale_from_channels(first[1])
    total = scale_from_channels(s["pointwise.weight"][0])
    if down is None or total is None or total % down:
        return None
    hparams = {"down": down, "channels": first[0], "num_layers": num_layers}
    return FAMILY.match(total // down, hparams, "train" if train else "deploy")


FAMILY = register_family(Family(
    name="urpnet",
    cls=URPNet,
    paper="URPNet, team 402Lab, AIS 2024 Real-Time 4K Super-Resolution of Compressed AVIF Images (CVPRW 2024)",
    variants={"urpnet": Variant(note="AIS 2024 RTSR entry (§3.12), fewest parameters and MACs; no released weights")},
    scales=(4,),
    capabilities=Capabilities(size_multiple=2),
    detect=detect,
    degradation="lanczos+avif",
))
