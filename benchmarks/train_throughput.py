"""Training throughput: esrkit's trainer against the plain loop most SR repositories use, in one run.

The plain loop is what BasicSR/EDSR-style code does on a CPU: the DataLoader workers crop an HR patch and make its
LR with a per-sample bicubic resize (here esrkit's own MATLAB-exact ``imresize`` on one float image, so both loops
produce the same LR), the model trains in fp32 in the default (NCHW) memory format. esrkit's loop is
:class:`esrkit.train.trainer.Trainer` itself: workers only crop uint8 patches, the LR of the whole batch is made
on the training device in one batched resize, and the model runs under bf16 autocast (where the CPU has
AVX512-BF16/AMX) in channels_last.

Both train the same model on the same images with the same patch, batch, optimizer and worker count. esrkit's
figure is measured between two runs of different length (so start-up, the final save and validation cancel);
the plain loop's after a warm-up. Samples/s of both and their ratio are printed; these machines are shared, so
only the ratio of one run means anything.

    python benchmarks/train_throughput.py [--iters 60] [--batch 16] [--patch-lr 48] [--workers 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from esrkit.data.io import read_image  # noqa: E402
from esrkit.data.resize import imresize  # noqa: E402
from esrkit.models import create_model  # noqa: E402
from esrkit.train.recipe import load_recipe  # noqa: E402
from esrkit.train.sampling import list_images  # noqa: E402
from esrkit.train.trainer import Trainer  # noqa: E402

MODEL = {"num_feat": 32, "num_block": 4, "esa_channels": 16}  # an RLFN-style net of about 130 K parameters


class PlainPairs(Dataset):
    """Per-sample crop and CPU bicubic in the worker, fp32 tensors out (the common repository pattern)."""

    def __init__(self, files: list[Path], patch: int, scale: int, length: int) -> None:
        self.images = [read_image(f) for f in files]
        self.patch, self.scale, self.length = patch, scale, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(index)
        img = self.images[index % len(self.images)]
        top = int(torch.randint(img.shape[0] - self.patch + 1, (1,), generator=gen))
        left = int(torch.randint(img.shape[1] - self.patch + 1, (1,), generator=gen))
        hr = torch.from_numpy(img[top:top + self.patch, left:left + self.patch].copy()).permute(2, 0, 1).float() / 255
        lr = imresize(hr.unsqueeze(0), 1 / self.scale, kernel="cubic").squeeze(0).clamp(0, 1)
        return lr, hr


def plain_loop(files: list[Path], args: argparse.Namespace) -> float:
    torch.manual_seed(0)
    model = create_model("rlfn", scale=4, **MODEL).to(args.device).train()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    total = (args.iters + args.warmup) * args.batch
    loader = DataLoader(PlainPairs(files, args.patch_lr * 4, 4, total), batch_size=args.batch,
                        num_workers=args.workers, shuffle=False)
    start = None
    for step, (lr, hr) in enumerate(loader):
        if step == args.warmup:
            start = time.perf_counter()
        lr, hr = lr.to(args.device), hr.to(args.device)
        loss = F.l1_loss(model(lr), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert start is not None
    return args.iters * args.batch / (time.perf_counter() - start)


def esrkit_loop(folder: Path, args: argparse.Namespace) -> tuple[float, str]:
    recipe_text = (
        f"{{model: rlfn, scale: 4, hparams: {MODEL}, workers: {args.workers}, val_every: 1000000, "
        f"checkpoint_every: 1000000, log_every: 1000000, stages: [{{iters: 1, patch: {args.patch_lr * 4}, "
        f"batch: {args.batch}, loss: {{l1: 1.0}}, optimizer: {{name: adam, lr: 5.0e-4}}}}]}}"
    )
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(recipe_text)
        for n, iters in enumerate((args.warmup, args.warmup + args.iters)):
            trainer = Trainer(load_recipe(path, [f"stages.0.iters={iters}"]), [folder], Path(tmp) / f"run{n}",
                              device=args.device)
            start = time.perf_counter()
            trainer.run()
            walls.append(time.perf_counter() - start)
            amp = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(trainer.amp, "fp32")  # type: ignore[arg-type]
    return args.iters * args.batch / (walls[1] - walls[0]), amp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="HR folder (default: shared BSDS500 train)")
    parser.add_argument("--iters", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch-lr", type=int, default=48)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    shared = Path(os.environ.get("ESRKIT_SHARED", REPO.parent / "shared"))
    folder = args.data or shared / "data" / "train" / "bsds500_train"
    if not folder.is_dir():
        sys.exit(f"train_throughput: no training images at {folder} (pass --data or set ESRKIT_SHARED)")
    files = list_images([folder])
    ours, amp = esrkit_loop(folder, args)
    plain = plain_loop(files, args)
    print(f"RLFN {MODEL}, batch {args.batch}, LR patch {args.patch_lr}, {args.workers} workers, {args.device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'loop':<46} {'samples/s':>10}")
    print(f"{'plain (per-sample CPU bicubic, fp32, NCHW)':<46} {plain:>10.1f}")
    print(f"{f'esrkit Trainer (batched bicubic, {amp}, NHWC)':<46} {ours:>10.1f}")
    print(f"ratio esrkit / plain: {ours / plain:.2f}x")


if __name__ == "__main__":
    main()
