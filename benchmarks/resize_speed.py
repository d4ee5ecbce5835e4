"""Speed of the MATLAB-exact resizer at 4K on this machine (prints a table; not a test).

    python benchmarks/resize_speed.py

Compares against torch's own (non-MATLAB, non-antialiased) bicubic measured in the same run, so the ratio is
meaningful on a shared, noisy machine.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from esrkit.data.resize import imresize


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (2160, 3840, 3), dtype=np.uint8)
    lr_t = torch.rand(1, 3, 540, 960)
    rows = [
        ("4K uint8 ↓×4 (numpy, float64)", best_of(lambda: imresize(hr, 0.25))),
        ("540p float32 ↑×4 (torch)", best_of(lambda: imresize(lr_t, 4.0))),
        ("540p float32 ↑×4 torch F.interpolate bicubic", best_of(
            lambda: F.interpolate(lr_t, scale_factor=4, mode="bicubic", align_corners=False))),
    ]
    print(f"{'case':50s} {'ms':>10s}")
    for name, ms in rows:
        print(f"{name:50s} {ms:10.1f}")
    print(f"esrkit ↑×4 / F.interpolate ratio: {rows[1][1] / rows[2][1]:.2f}")


if __name__ == "__main__":
    main()
