"""Hyper-parameter values checked against the family's ``__init__`` signature before a module is built.

Hyper-parameters reach :func:`~esrkit.models.create_model` from code, recipes and, above all, from checkpoint
metadata that anyone can write. A family's class states each one's type in its annotations (``num_feat: int``,
``img_range: float``, ``tucker_rank: int | None``); a value of another type, or a size no SR network has, fails
later and badly: ``num_feat: -5`` is torch's RuntimeError from inside a layer, a list is a TypeError, and
``num_feat: 10000000`` allocates 22.8 GB before anything compares it with the weights. So every value is held
here to its annotated type and to a range, with a one-line :class:`~esrkit.errors.InputError` naming it.

Ranges are generic, not per family: integers (widths, depths, ratios) in ``[0, MAX_HPARAM_INT]``, real numbers
finite with magnitude at most that too (a float multiplier such as ECBSR's ``depth_multiplier`` scales a width),
strings at most 64 characters. These bound what building the model can cost before the weights are compared
(:mod:`esrkit.checkpoint_inspect.metadata` builds it on the ``meta`` device first); whether a value suits the
family is the family's ``__init__``'s call, and whether it suits the file is the shape comparison's.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Mapping
from typing import Any

from torch import nn

from ..errors import InputError

__all__ = ["MAX_HPARAM_INT", "check_hparams"]

MAX_HPARAM_INT = 1 << 16  # widths and depths of SR networks are in the tens to hundreds
_MAX_TEXT = 64
_KINDS = {"int": int, "float": float, "str": str, "bool": bool, "None": type(None)}


def _kinds(annotation: Any) -> set[type] | None:
    """The types an annotation allows (``"int | None"`` → {int, NoneType}), or None when it is not made of
    int/float/str/bool/None alone (a plug-in family's own annotation): then any bounded scalar is allowed."""
    if isinstance(annotation, str):
        names = [part.strip() for part in annotation.split("|")]
        return {_KINDS[n] for n in names} if all(n in _KINDS for n in names) else None
    if annotation in _KINDS.values():
        return {annotation}
    return None


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _problem(value: Any, kinds: set[type] | None) -> str | None:
    """Why ``value`` is not an acceptable value of these kinds (None when it is)."""
    if value is None:
        return None if kinds is None or type(None) in kinds else "is None"
    if isinstance(value, bool):
        if kinds is None or bool in kinds:
            return None
    elif isinstance(value, numbers.Integral) and (kinds is None or int in kinds or float in kinds):
        return None if abs(int(value)) <= MAX_HPARAM_INT and (value >= 0 or kinds is None or int not in kinds) \
            else f"is out of range (integers are 0…{MAX_HPARAM_INT:,})"
    elif isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) \
            and (kinds is None or float in kinds):
        return None if math.isfinite(value) and abs(value) <= MAX_HPARAM_INT \
            else f"is out of range (finite, at most {MAX_HPARAM_INT:,} in magnitude)"
    elif isinstance(value, str) and (kinds is None or str in kinds):
        return None if len(value) <= _MAX_TEXT else f"is longer than {_MAX_TEXT} characters"
    wanted = " or ".join(sorted(k.__name__.replace("NoneType", "None") for k in kinds)) if kinds else "a scalar"
    return f"is a {type(value).__name__}, not {wanted}"


def check_hparams(name: str, cls: type[nn.Module], hparams: Mapping[Any, Any]) -> None:
    """Refuse hyper-parameters of model ``name`` (family class ``cls``) that are not keyword names of its
    ``__init__`` or whose values are not of the annotated type and within the generic ranges (module docstring)."""
    signature = inspect.signature(cls.__init__).parameters
    valid = [p.name for p in signature.values()
             if p.name not in ("self", "scale") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in hparams if not isinstance(k, str) or k not in valid]
    if unknown:
        names = ", ".join(sorted(_describe(k) for k in unknown))
        raise InputError(f"model {name!r} has no hyper-parameter {names}; valid: {', '.join(valid)}")
    for key, value in hparams.items():
        problem = _problem(value, _kinds(signature[key].annotation))
        if problem:
            raise InputError(f"model {name!r}: hyper-parameter {key}={_describe(value)} {problem}")
