"""Seeds and the check shared by the two checkpoint targets (``.pth`` and ``.safetensors``).

The seeds are real, loadable checkpoints of tiny zoo models, generated at start rather than stored: an
MSRResNet (train form only) and an ECBSR in train and deploy form (so both branches of the form detection are
reachable), at ×2. Mutating valid files is what reaches the deep code: random bytes never get past the zip or
safetensors header, while a flipped byte in a valid file lands in the pickle, the tensor records, the header
JSON, the esrkit metadata or a shape, i.e. in the layout detection and strict loading behind them.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import torch
from torch import nn


def tiny_models() -> dict[str, nn.Module]:
    """Small registered models (a few hundred parameters), seeded so the seeds are the same on every run."""
    from esrkit.models import create_model, reparameterize

    torch.manual_seed(0)
    msrresnet = create_model("msrresnet", scale=2, num_feat=4, num_block=1)
    ecbsr = create_model("ecbsr_m4c8", scale=2, num_block=1, num_feat=4)
    return {"msrresnet": msrresnet, "ecbsr_train": ecbsr, "ecbsr_deploy": reparameterize(ecbsr)}


def _torch_bytes(obj: object, legacy: bool = False) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


def pth_seeds() -> dict[str, bytes]:
    """Every wrapper the loader documents, in the zip format and the legacy pickle format (whose pickle the
    weights-only unpickler parses in Python, so mutations there reach more code), and zips whose pickle is a run
    of one object-building opcode (mutations that lengthen the run probe the opcode count)."""
    out: dict[str, bytes] = {}
    for name, model in tiny_models().items():
        sd = model.state_dict()
        forms = {
            "bare": sd,
            "params": {"params": sd},
            "params_ema": {"params": sd, "params_ema": {k: v.clone() for k, v in sd.items()}},
            "module": {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
            "extras": {"model": sd, "epoch": 7, "optimizer": {"lr": 1e-3}},
        }
        for form, obj in forms.items():
            out[f"{name}_{form}_zip"] = _torch_bytes(obj)
            out[f"{name}_{form}_legacy"] = _torch_bytes(obj, legacy=True)
    for opcode in (b"\x8f", b"(", b"}", b"]"):  # runs of EMPTY_SET, MARK, EMPTY_DICT, EMPTY_LIST: the object counts
        out[f"run_{opcode.hex()}_zip"] = _zip_pickle(b"\x80\x02" + opcode * 4000 + b".")
    return out


def _zip_pickle(pickle_bytes: bytes) -> bytes:
    """A torch-layout zip (``archive/data.pkl``, deflated) holding ``pickle_bytes`` and no tensors."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        archive.writestr("archive/version", "3\n")
    return buf.getvalue()


def safetensors_seeds() -> dict[str, bytes]:
    """esrkit's own files (model description in the header metadata) and plain safetensors without it."""
    from safetensors.torch import save as save_bytes

    from esrkit.checkpoints import save_checkpoint

    out: dict[str, bytes] = {}
    scratch = Path(tempfile.mkdtemp(prefix="esrkit-fuzz-seeds-"))
    for name, model in tiny_models().items():
        path = save_checkpoint(model, scratch / f"{name}.safetensors", provenance={"source": "fuzz seed"})
        out[f"{name}_esrkit"] = path.read_bytes()
        path.unlink()
        tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
        out[f"{name}_plain"] = save_bytes(tensors)
        out[f"{name}_module"] = save_bytes({f"module.{k}": v for k, v in tensors.items()})
    scratch.rmdir()
    return out


def check_loaded(model: nn.Module) -> None:
    """A checkpoint that loads must come back as a described model in eval mode (what the CLI relies on)."""
    from esrkit.models import get_config

    config = get_config(model)
    if config is None or model.training:
        raise AssertionError(f"load_checkpoint returned an undescribed or training-mode module: {config}")
