"""Property-based tests (hypothesis) of the invariants esrkit's numbers rest on.

* :func:`esrkit.data.resize.imresize` — MATLAB's ``imresize``: a constant image stays that constant (every output
  pixel's weights are normalised to sum to one, borders included), the map is linear in the image (it is a fixed
  pair of matrices per geometry), and the output size is MATLAB's ``ceil(scale · size)`` per side, or the explicit
  ``size``, for any scale and input size;
* :mod:`esrkit.metrics` — PSNR is symmetric, infinite exactly for identical images and between 0 and
  ``10·log10(255²·N)`` for distinct uint8 images (the bounds follow from the definition: the MSE of uint8 images
  is at most 255² and, when they differ, at least 1/N); SSIM is symmetric, 1 for an image against itself and in
  [−1, 1] (both factors of Wang et al.'s index are ratios bounded by one in magnitude);
* :class:`esrkit.infer.Upscaler` — tiled output equals the whole-image output (≤1e-5) for a model the registry
  calls ``tile_exact`` whenever the overlap covers its receptive field, at random sizes, scales and tile settings.

The fold properties of the re-parameterizable blocks are in ``tests/test_reparam_blocks.py``; they are not
repeated here. Examples are small and ``max_examples`` modest so the file runs in seconds.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from esrkit.data.resize import imresize, output_size
from esrkit.infer import Upscaler
from esrkit.metrics import psnr, ssim
from esrkit.models import create_model
from esrkit.models.registry import capabilities_of

# ----------------------------------------------------------------------------------------------------
# imresize

_sides = st.integers(1, 24)
_scales = st.one_of(
    st.sampled_from([1 / 4, 1 / 3, 1 / 2, 2 / 3, 3 / 4, 1.0, 1.5, 2.0, 3.0, 4.0]),
    st.floats(0.15, 4.0, allow_nan=False, allow_infinity=False),
)
_kernels = st.sampled_from(["cubic", "lanczos2", "lanczos3"])
_channels = st.sampled_from([None, 1, 3])  # None: a 2-D (H, W) image


def _shape(h: int, w: int, c: int | None) -> tuple[int, ...]:
    return (h, w) if c is None else (h, w, c)


@settings(max_examples=60, deadline=None)
@given(h=_sides, w=_sides, c=_channels, scale=_scales, kernel=_kernels, antialias=st.booleans(),
       value=st.integers(0, 255))
def test_imresize_keeps_a_constant_uint8_image_exactly(h, w, c, scale, kernel, antialias, value) -> None:
    img = np.full(_shape(h, w, c), value, dtype=np.uint8)
    out = imresize(img, scale, kernel=kernel, antialias=antialias)
    assert out.dtype == np.uint8
    assert np.all(out == value)


@settings(max_examples=40, deadline=None)
@given(h=_sides, w=_sides, scale=_scales, kernel=_kernels, antialias=st.booleans(),
       value=st.floats(-1e3, 1e3, allow_nan=False))
def test_imresize_keeps_a_constant_float_image(h, w, scale, kernel, antialias, value) -> None:
    out = imresize(np.full((h, w, 3), value), scale, kernel=kernel, antialias=antialias)
    assert np.allclose(out, value, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(h=_sides, w=_sides, c=_channels, scale=_scales, kernel=_kernels, antialias=st.booleans(),
       a=st.floats(-3, 3), b=st.floats(-3, 3), tensor=st.booleans(), seed=st.integers(0, 2**16))
def test_imresize_is_linear(h, w, c, scale, kernel, antialias, a, b, tensor, seed) -> None:
    rng = np.random.default_rng(seed)
    x, y = rng.random(_shape(h, w, c)), rng.random(_shape(h, w, c))
    if tensor:  # the (..., H, W) tensor path: a 1×C×H×W float64 batch
        x, y = (torch.from_numpy(np.moveaxis(v.reshape(h, w, -1), -1, 0)).unsqueeze(0) for v in (x, y))

    def resize(img):
        return imresize(img, scale, kernel=kernel, antialias=antialias)

    combined = resize(a * x + b * y)
    separate = a * resize(x) + b * resize(y)
    diff = (combined - separate).abs().max().item() if tensor else np.abs(combined - separate).max()
    assert diff <= 1e-9


@settings(max_examples=80, deadline=None)
@given(h=_sides, w=_sides, c=_channels, scale=_scales, kernel=_kernels)
def test_imresize_output_size_is_matlabs_ceil(h, w, c, scale, kernel) -> None:
    expected = (math.ceil(scale * h), math.ceil(scale * w))  # MATLAB: ceil(scale .* size(A, [1 2]))
    out = imresize(np.zeros(_shape(h, w, c), dtype=np.uint8), scale, kernel=kernel)
    assert out.shape[:2] == expected
    assert out.shape[2:] == _shape(h, w, c)[2:]
    assert output_size((h, w), scale) == expected
    batch = imresize(torch.zeros(2, 3, h, w), scale, kernel=kernel)
    assert tuple(batch.shape) == (2, 3, *expected)


@settings(max_examples=40, deadline=None)
@given(h=_sides, w=_sides, ho=st.integers(1, 40), wo=st.integers(1, 40), kernel=_kernels)
def test_imresize_explicit_size_is_honoured(h, w, ho, wo, kernel) -> None:
    out = imresize(np.zeros((h, w, 3), dtype=np.uint8), size=(ho, wo), kernel=kernel)
    assert out.shape == (ho, wo, 3)
    assert output_size((h, w), size=(ho, wo)) == (ho, wo)


# ----------------------------------------------------------------------------------------------------
# PSNR and SSIM


def _images(seed: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, shape, dtype=np.uint8), rng.integers(0, 256, shape, dtype=np.uint8)


@settings(max_examples=50, deadline=None)
@given(h=st.integers(1, 16), w=st.integers(1, 16), c=_channels, seed=st.integers(0, 2**16))
def test_psnr_is_symmetric_and_bounded(h, w, c, seed) -> None:
    a, b = _images(seed, _shape(h, w, c))
    assert psnr(a, b) == psnr(b, a)
    assert psnr(a, a) == math.inf
    if np.array_equal(a, b):
        return
    n = a.size
    assert 0.0 <= psnr(a, b) <= 10 * math.log10(255**2 * n) + 1e-9


@settings(max_examples=30, deadline=None)
@given(h=st.integers(1, 16), w=st.integers(1, 16), d=st.integers(1, 255), seed=st.integers(0, 2**16))
def test_psnr_of_one_changed_pixel_is_the_definition(h, w, d, seed) -> None:
    """One pixel off by d: MSE = d²/N, so PSNR = 10·log10(255²·N/d²); d = 255 everywhere gives exactly 0 dB."""
    a = np.random.default_rng(seed).integers(0, 256 - d, (h, w, 3), dtype=np.uint8)
    b = a.copy()
    b[0, 0, 0] += d
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 * a.size / d**2), rel=1e-12)
    assert psnr(np.zeros((h, w), np.uint8), np.full((h, w), 255, np.uint8)) == 0.0


@settings(max_examples=25, deadline=None)
@given(h=st.integers(11, 22), w=st.integers(11, 22), c=_channels, seed=st.integers(0, 2**16),
       related=st.booleans())
def test_ssim_is_symmetric_one_on_itself_and_in_range(h, w, c, seed, related) -> None:
    a, b = _images(seed, _shape(h, w, c))
    if related:  # a noisy copy: SSIM well above 0, where a sign or variance slip would show
        b = np.clip(a.astype(int) + (b.astype(int) - 128) // 8, 0, 255).astype(np.uint8)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    value = ssim(a, b)
    assert value == pytest.approx(ssim(b, a), abs=1e-12)
    assert -1.0 - 1e-12 <= value <= 1.0 + 1e-12
    assert ssim(np.full((h, w), 7, np.uint8), np.full((h, w), 7, np.uint8)) == pytest.approx(1.0, abs=1e-12)


# ----------------------------------------------------------------------------------------------------
# Tiled upscaling


_TILE_EXACT = {"msrresnet": {"num_feat": 8, "num_block": 1}, "imdn": {"num_feat": 8, "num_block": 1}}


@cache
def _model(name: str, scale: int) -> tuple[nn.Module, int]:
    """A random-weight small model and its receptive radius in LR pixels, measured by autograd (how far the
    outputs of the centre LR pixel depend on the input), so the overlap under test does not trust the code."""
    torch.manual_seed(scale)
    model = create_model(name, scale=scale, **_TILE_EXACT[name]).eval()
    size = 41
    x = torch.rand(1, 3, size, size, requires_grad=True)
    c = size // 2
    out = model(x)[0, :, c * scale:(c + 1) * scale, c * scale:(c + 1) * scale]
    (out * torch.randn_like(out)).sum().backward()
    rows, cols = torch.nonzero(x.grad[0].abs().sum(0)).unbind(1)  # type: ignore[union-attr]
    radius = int(max((rows - c).abs().max(), (cols - c).abs().max()))
    assert radius < c - 1, "probe too small for this receptive field"
    return model, radius


@pytest.mark.parametrize("name", sorted(_TILE_EXACT))
def test_the_tiling_models_are_tile_exact_in_the_registry(name: str) -> None:
    model, _ = _model(name, 4)
    assert capabilities_of(model).tile_exact, f"{name} with {_TILE_EXACT[name]} must be registered tile_exact"


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(sorted(_TILE_EXACT)), scale=st.sampled_from([2, 3, 4]), h=st.integers(1, 32),
       w=st.integers(1, 32), extra=st.integers(0, 3), body=st.integers(4, 24), seed=st.integers(0, 2**16))
def test_tiled_output_equals_whole_image_output(name, scale, h, w, extra, body, seed) -> None:
    model, radius = _model(name, scale)
    overlap = radius + extra
    tile = 2 * overlap + body
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h, w, generator=gen)
    whole = Upscaler(model, scale)
    tiled = Upscaler(model, scale, tile=tile, tile_overlap=overlap)
    out = tiled.upscale_tensor(x)
    assert out.shape == (1, 3, h * scale, w * scale)
    assert (out - whole.upscale_tensor(x)).abs().max().item() <= 1e-5
    lr = (x[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    # the uint8 path rounds tile by tile: the same image up to a rounding tie
    assert np.abs(tiled(lr).astype(int) - whole(lr).astype(int)).max() <= 1
