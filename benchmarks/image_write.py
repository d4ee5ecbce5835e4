"""Writing one upscaled image: Pillow's PNG encoder against esrkit's (:mod:`esrkit.data.png_encode`, one thread and
the default), and ``tensor_to_image`` against the whole-tensor formula it replaced, in one process, interleaved.

    python benchmarks/image_write.py --reps 5

The image is esrkit's sample photograph resized to 960×540 and upscaled ×4 with bicubic (3840×2160, what ``esrkit
upscale`` writes for the end-to-end benchmark's inputs). Each cell is the median of ``--reps`` rounds; the
methods alternate inside every round, so a load change on a shared machine hits them alike. The PNG methods'
outputs are decoded and compared with the image, and the two roundings with each other, before anything is timed.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image


def old_tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """tensor_to_image as it was: a scaled copy, clamp, round, convert, transpose, copy."""
    scaled = tensor[0].float() * 255.0
    return np.ascontiguousarray(scaled.clamp_(0, 255).round_().to(torch.uint8).permute(1, 2, 0).numpy())


def main(reps: int) -> None:
    from esrkit.data.io import image_to_tensor, tensor_to_image
    from esrkit.data.png_encode import PNG_COMPRESS_LEVEL, encode_png
    from esrkit.data.resize import imresize
    from esrkit.demo import load_sample

    photo = imresize(image_to_tensor(load_sample()), size=(540, 960)).clamp(0, 1)
    sr = imresize(photo, 4).clamp(0, 1).contiguous()
    image = tensor_to_image(sr)
    assert np.array_equal(image, old_tensor_to_image(sr)), "the roundings differ"

    def pillow(fh: io.BytesIO) -> None:
        Image.fromarray(image).save(fh, format="PNG", compress_level=PNG_COMPRESS_LEVEL)

    encoders: dict[str, Callable[[io.BytesIO], None]] = {
        "Pillow PNG": pillow,
        "encode_png, 1 thread": lambda fh: encode_png(fh, image, threads=1),
        "encode_png (default)": lambda fh: encode_png(fh, image),
    }
    sizes = {}
    for name, encode in encoders.items():
        buffer = io.BytesIO()
        encode(buffer)
        buffer.seek(0)
        with Image.open(buffer) as img:
            assert np.array_equal(np.asarray(img), image), name
        sizes[name] = buffer.getbuffer().nbytes
    roundings: dict[str, Callable[[], object]] = {"tensor_to_image, before": lambda: old_tensor_to_image(sr),
                                                 "tensor_to_image, now": lambda: tensor_to_image(sr)}
    times: dict[str, list[float]] = {name: [] for name in (*encoders, *roundings)}
    for _ in range(reps):
        for name, encode in encoders.items():
            t0 = time.perf_counter()
            encode(io.BytesIO())
            times[name].append(time.perf_counter() - t0)
        for name, run in roundings.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    print(f"writing a {image.shape[1]}×{image.shape[0]} RGB output, median of {reps} interleaved rounds")
    print(f"{'step':26s} {'seconds':>8s} {'min':>7s} {'max':>7s} {'file MB':>8s}")
    for name, seconds in times.items():
        size = f"{sizes[name] / 1e6:8.2f}" if name in sizes else f"{'':8s}"
        print(f"{name:26s} {statistics.median(seconds):8.3f} {min(seconds):7.3f} {max(seconds):7.3f} {size}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="interleaved rounds (median)")
    main(parser.parse_args().reps)
