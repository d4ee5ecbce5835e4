"""Training losses and the weighted sum a recipe asks for.

Every loss here is an ``nn.Module`` called as ``loss(sr, hr, lr=None)`` with float batches ``N×3×H×W`` in
[0, 1] (esrkit's range): ``sr`` the model output, ``hr`` the target, ``lr`` the model input. Pixel losses ignore
``lr``; the contrastive loss needs it for its negative and the distillation loss to run the teacher. One call
signature lets :class:`CompositeLoss` treat them alike.

Values are means over all elements (batch, channels, pixels), so a loss weight does not depend on batch or
patch size, with one exception noted at :class:`FFTLoss`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.resize import imresize
from ..errors import InputError

__all__ = [
    "LOSSES",
    "CharbonnierLoss",
    "CompositeLoss",
    "ContrastiveLoss",
    "DistillationLoss",
    "FFTLoss",
    "L1Loss",
    "MSELoss",
    "build_loss",
    "check_distillation",
]


class L1Loss(nn.Module):
    """Mean absolute error, the default SR loss (RFDN, RLFN, LKDN)."""

    def forward(self, sr: Tensor, hr: Tensor, lr: Tensor | None = None) -> Tensor:
        return F.l1_loss(sr, hr)


class MSELoss(nn.Module):
    """Mean squared error ("L2"), used by most recipes for a final PSNR-oriented fine-tuning stage."""

    def forward(self, sr: Tensor, hr: Tensor, lr: Tensor | None = None) -> Tensor:
        return F.mse_loss(sr, hr)


class CharbonnierLoss(nn.Module):
    """``mean(sqrt((sr - hr)² + eps²))``: L1 with a smooth minimum, so gradients do not flip sign abruptly at 0.

    ``eps`` is ε itself, as in the papers (the NTIRE 2023 CUC_SR entry states ε² = 1e-6, i.e. the default
    ε = 1e-3). Some code bases name ε² ``eps`` instead; with those, pass the square root. The constant ``eps``
    floor is kept (not subtracted), so a perfect prediction scores ``eps``, not 0.
    """

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        if not (isinstance(eps, int | float) and math.isfinite(eps) and eps > 0):
            raise InputError(f"must be a finite number > 0, got {eps!r}", param="eps")
        self.eps = float(eps)

    def forward(self, sr: Tensor, hr: Tensor, lr: Tensor | None = None) -> Tensor:
        return torch.sqrt((sr - hr).square() + self.eps**2).mean()

    def extra_repr(self) -> str:
        return f"eps={self.eps}"


class FFTLoss(nn.Module):
    """L1 distance between the 2-D real FFTs of SR and HR, real and imaginary parts taken as separate numbers.

    ``mean(|Re(F(sr) - F(hr))|, |Im(F(sr) - F(hr))|)`` over all frequencies of ``torch.fft.rfft2`` with its
    default, unnormalised transform, as the NTIRE 2023 teams describe ``||FFT(sr) - FFT(hr)||_1`` with weights of
    0.05-0.5 next to L1. Unlike the pixel losses its value grows with patch size (a frequency sums ``H·W``
    pixels, so for noise-like errors it grows like ``sqrt(H·W)``): keep the weight tied to the patch size the
    recipe was tuned at. Computed in float32, since half-precision FFTs only accept power-of-two sizes.
    """

    def forward(self, sr: Tensor, hr: Tensor, lr: Tensor | None = None) -> Tensor:
        diff = torch.fft.rfft2(sr.float()) - torch.fft.rfft2(hr.float())
        return torch.view_as_real(diff).abs().mean()


class ContrastiveLoss(nn.Module):
    """RLFN's contrastive loss (Kong et al., CVPR-W 2022, Eq. 8) with its random shallow feature extractor.

    ``CL = d(φ(sr), φ(hr)) / d(φ(sr), φ(neg))`` with ``d`` the L1 distance: pull the output towards HR and push
    it away from ``neg``, the bicubic upsampling of the LR input (MATLAB bicubic, :func:`esrkit.data.imresize`).

    From the paper: the extractor ``φ`` is **randomly initialised and never trained**, two layers
    ``Conv3×3 – Tanh – Conv3×3`` (stride 1), because shallow features keep the edges and textures PSNR depends
    on while pre-trained VGG-19 features lowered PSNR, and because Tanh, bounded and dense, supervises more
    strongly than ReLU. The paper's only weight is "L1 + 255 × CL" for a model running on [0, 255] pixels.
    There L1 is 255× larger than on esrkit's [0, 1] while CL, a ratio of distances, is roughly range-free
    (Tanh keeps it from being exactly so), so that balance corresponds to a weight of about 1 here.

    Not in the paper (no training code was released), and chosen here:

    * width: ``channels`` = 64 in both convolutions (VGG's first-layer width, the paper's point of comparison);
    * the layers entering Eq. 8: only the extractor's output (one term, λ = 1) — the extractor as a whole is
      the paper's "feature extractor", so its single output is the reading with the fewest extra choices;
    * anchor = SR, positive = HR, negative = bicubic-upsampled LR (the notes call the negatives unstated; the
      bicubic image is the natural "blurry answer" to push away from);
    * the extractor input is the [0, 1] image (the paper's code base ran on [0, 255], where Tanh would
      saturate; this is a guess in either direction);
    * PyTorch's default convolution initialisation, drawn from a private generator seeded with ``seed``, so a
      resumed or warm-started stage sees the same extractor without storing it;
    * ``eps`` = 1e-8 added to the denominator, which is 0 when the SR equals the bicubic image.

    The extractor's weights are buffers, not parameters: nothing here is trainable or saved in a state dict.
    The gradient reaches ``sr`` through both distances.
    """

    def __init__(self, channels: int = 64, seed: int = 0, eps: float = 1e-8) -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise InputError(f"must be a positive integer, got {channels!r}", param="channels")
        gen = torch.Generator().manual_seed(int(seed))
        with torch.random.fork_rng(devices=[]):  # use nn.Conv2d's default init without touching the global RNG
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
            conv1, conv2 = nn.Conv2d(3, channels, 3, padding=1), nn.Conv2d(channels, channels, 3, padding=1)
        for name, conv in (("1", conv1), ("2", conv2)):
            self.register_buffer(f"weight{name}", conv.weight.detach().clone(), persistent=False)
            self.register_buffer(f"bias{name}", conv.bias.detach().clone(), persistent=False)
        self.eps = float(eps)

    def features(self, x: Tensor) -> Tensor:
        """``φ(x)``: Conv3×3 – Tanh – Conv3×3 with the frozen random weights."""
        x = torch.tanh(F.conv2d(x, self.weight1, self.bias1, padding=1))
        return F.conv2d(x, self.weight2, self.bias2, padding=1)

    def forward(self, sr: Tensor, hr: Tensor, lr: Tensor | None = None) -> Tensor:
        if lr is None:
            raise InputError("the contrastive loss needs the LR input for its negative", param="lr")
        with torch.no_grad():
            negative = imresize(lr.float(), size=(hr.shape[-2], hr.shape[-1]))
            assert isinstance(negative, Tensor)
            f_pos, f_neg = self.features(hr.float()), self.features(negative)
        f_sr = self.features(sr.float())
        return F.l1_loss(f_sr, f_pos) / (F.l1_loss(f_sr, f_neg) + self.eps)


def _module(model: nn.Module, name: str, param: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        some = ", ".join(repr(n) for n in list(modules)[1:9])
        raise InputError(f"no module named {name!r} in {type(model).__name__} (e.g. {some})", param=param)
    return modules[name]


def check_distillation(weight_out: object, weight_feat: object, feature_pairs: Sequence[Any]) -> None:
    """The rules :class:`DistillationLoss` holds its numbers to, also run when a recipe is loaded (before any
    model exists): two finite weights >= 0, and a module pair for a positive feature weight."""
    for value, param in ((weight_out, "weight_out"), (weight_feat, "weight_feat")):
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise InputError(f"{param} must be a finite number >= 0, got {value!r}", param=param)
    if weight_feat > 0 and not feature_pairs:  # type: ignore[operator]
        raise InputError("feature distillation needs at least one (student, teacher) module pair",
                         param="feature_pairs")


class DistillationLoss(nn.Module):
    """Knowledge distillation from a frozen teacher: output and feature matching, both L1.

    ``weight_out · L1(sr, teacher(lr)) + weight_feat · Σ_pairs L1(adapter(f_student), f_teacher)`` where each
    pair names a student module and a teacher module whose outputs (captured with forward hooks) are matched.
    An adapter is a learnable 1×1 convolution from the student's channel count to the teacher's (MegSR's
    NTIRE 2023 scheme); the widths are found once at construction by running both models on a 1×3×48×48 probe.

    Usage: build it after any EMA copy of the student (or not: hooks ignore calls from other modules), run the
    student on ``lr``, then call ``loss(sr, hr, lr)``; the teacher runs on ``lr`` under ``no_grad``. The
    student's features are the ones captured by its most recent forward, so call the loss right after it.

    * The teacher is frozen (``requires_grad=False``) and stays in eval mode whatever ``train()`` says. It is a
      submodule, so ``.to(device)`` moves it; ``adapters.state_dict()`` is what a checkpoint needs.
    * The student is *not* a submodule: its parameters belong to the model and its optimizer, and must not be
      listed twice. The trainer adds :meth:`adapter_parameters` to its optimizer.
    * :meth:`remove_hooks` detaches the hooks when distillation ends.

    Raises:
        InputError: a module name that does not exist, an empty pair list with ``weight_feat`` > 0, or a
            negative weight.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, feature_pairs: Sequence[tuple[str, str]],
                 weight_out: float = 1.0, weight_feat: float = 1.0) -> None:
        super().__init__()
        check_distillation(weight_out, weight_feat, feature_pairs)
        pairs = [(str(s), str(t)) for s, t in feature_pairs]
        self.weight_out, self.weight_feat = float(weight_out), float(weight_feat)
        self.pairs = pairs
        self.__dict__["student"] = student  # plain attribute: not registered, see the class docstring
        self.teacher = teacher.eval().requires_grad_(False)
        self._student_feats: dict[str, Tensor] = {}
        self._teacher_feats: dict[str, Tensor] = {}
        self._hooks: list[Any] = []
        for s_name, t_name in pairs:
            self._hook(_module(student, s_name, "feature_pairs"), s_name, self._student_feats)
            self._hook(_module(teacher, t_name, "feature_pairs"), t_name, self._teacher_feats)
        widths = self._probe_widths(student, teacher)
        self.adapters = nn.ModuleDict({
            str(i): nn.Conv2d(widths[("s", s)], widths[("t", t)], 1).to(self._device(student))
            for i, (s, t) in enumerate(pairs)
        })

    @staticmethod
    def _device(model: nn.Module) -> torch.device:
        return next((p.device for p in model.parameters()), torch.device("cpu"))

    def _hook(self, module: nn.Module, name: str, store: dict[str, Tensor]) -> None:
        def capture(mod: nn.Module, args: Any, output: Any) -> None:
            if mod is module:  # a deep copy (e.g. an EMA model) carries the hook along; ignore its calls
                store[name] = output

        self._hooks.append(module.register_forward_hook(capture))

    def _probe_widths(self, student: nn.Module, teacher: nn.Module) -> dict[tuple[str, str], int]:
        widths: dict[tuple[str, str], int] = {}
        for tag, model, store in (("s", student, self._student_feats), ("t", teacher, self._teacher_feats)):
            was_training = model.training
            model.eval()  # no batch-norm statistics updates from the probe
            try:
                with torch.no_grad():
                    model(torch.zeros(1, 3, 48, 48, device=self._device(model)))
            finally:
                model.train(was_training)
            for name, feat in store.items():
                if not isinstance(feat, Tensor) or feat.ndim != 4:
                    raise InputError(f"module {name!r} does not output an N×C×H×W tensor", param="feature_pairs")
                widths[(tag, name)] = feat.shape[1]
            store.clear()
        return widths

    def train(self, mode: bool = True) -> DistillationLoss:
        super().train(mode)
        self.teacher.eval()
        return self

    def adapter_parameters(self) -> Iterator[nn.Parameter]:
        """The learnable parameters (the 1×1 adapters): add them to the optimizer."""
        return self.adapters.parameters()

    def remove_hooks(self) -> None:
        """Detach the forward hooks from student and teacher."""
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()

    def forward(self, sr: Tensor, hr: Tensor, lr: Tensor | None = None) -> Tensor:
        if lr is None:
            raise InputError("distillation needs the LR input to run the teacher", param="lr")
        with torch.no_grad():
            teacher_out = self.teacher(lr)
        total = self.weight_out * F.l1_loss(sr, teacher_out) if self.weight_out else sr.new_zeros(())
        if self.weight_feat:
            for i, (s_name, t_name) in enumerate(self.pairs):
                if s_name not in self._student_feats:
                    raise InputError(f"no features captured from student module {s_name!r}: run the student "
                                     "before the loss", param="student")
                student_feat = self.adapters[str(i)](self._student_feats[s_name])
                total = total + self.weight_feat * F.l1_loss(student_feat, self._teacher_feats[t_name])
        return total


#: Loss classes by recipe name (``l2`` is an alias of ``mse``).
LOSSES: dict[str, type[nn.Module]] = {
    "l1": L1Loss,
    "mse": MSELoss,
    "l2": MSELoss,
    "charbonnier": CharbonnierLoss,
    "fft": FFTLoss,
    "contrastive": ContrastiveLoss,
}


class CompositeLoss(nn.Module):
    """Weighted sum of named loss terms; ``forward(sr, hr, lr=None)`` returns ``(total, parts)``.

    ``parts`` maps each term name to its *unweighted* value, detached (kept on the device: logging them need not
    synchronise every iteration). Terms are ``nn.Module`` s in :attr:`terms`, so ``.to(device)`` moves them.
    """

    def __init__(self, terms: Mapping[str, tuple[nn.Module, float]]) -> None:
        super().__init__()
        if not terms:
            raise InputError("no loss terms given", param="spec")
        self.terms = nn.ModuleDict({name: module for name, (module, _) in terms.items()})
        self.weights = {name: float(weight) for name, (_, weight) in terms.items()}

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the optimizer must train besides the model's (distillation adapters); often empty."""
        return [p for p in self.parameters() if p.requires_grad]

    def forward(self, sr: Tensor, hr: Tensor, lr: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        total: Tensor | None = None
        parts: dict[str, Tensor] = {}
        for name, term in self.terms.items():
            value = term(sr, hr, lr)
            parts[name] = value.detach()
            weighted = self.weights[name] * value
            total = weighted if total is None else total + weighted
        assert total is not None
        return total, parts


def build_loss(spec: Mapping[str, Any], extra: Mapping[str, nn.Module] | None = None) -> CompositeLoss:
    """The weighted sum a recipe describes, e.g. ``{"l1": 1.0, "fft": 0.05, "contrastive": 0.1}``.

    Each value is a weight (a number >= 0; a term with weight 0 is left out, not computed), or a mapping with
    ``"weight"`` and the loss's keyword arguments, e.g. ``{"charbonnier": {"weight": 0.9, "eps": 1e-3}}``.
    Names are those of :data:`LOSSES`, plus the keys of ``extra``: prebuilt terms that need more than numbers,
    such as ``build_loss({"l1": 1, "distill": 1}, extra={"distill": DistillationLoss(...)})``.

    Raises:
        InputError: an unknown name (the message lists the valid ones), a bad weight or keyword argument, or
            no term with a positive weight.
    """
    extra = dict(extra or {})
    if not isinstance(spec, Mapping):
        raise InputError(f"must be a mapping of loss names to weights, got {type(spec).__name__}", param="spec")
    terms: dict[str, tuple[nn.Module, float]] = {}
    for name, value in spec.items():
        kwargs: dict[str, Any] = {}
        if isinstance(value, Mapping):
            kwargs = dict(value)
            weight = kwargs.pop("weight", 1.0)
        else:
            weight = value
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) \
                or weight < 0:
            raise InputError(f"weight of {name!r} must be a finite number >= 0, got {weight!r}", param="spec")
        if name in extra:
            if kwargs:
                raise InputError(f"{name!r} is prebuilt; it takes no options ({', '.join(map(repr, kwargs))})",
                                 param="spec")
            module = extra[name]
        elif name in LOSSES:
            try:
                module = LOSSES[name](**kwargs)
            except TypeError as exc:
                raise InputError(f"bad options for loss {name!r}: {exc}", param="spec") from None
        else:
            valid = sorted({*LOSSES, *extra})
            raise InputError(f"unknown loss {name!r}; choose from {', '.join(valid)}", param="spec")
        if weight > 0:
            terms[name] = (module, float(weight))
    if not terms:
        raise InputError("no loss term has a positive weight", param="spec")
    return CompositeLoss(terms)
