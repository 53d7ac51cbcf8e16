"""Detector checkpoints: weights together with the resolved training config and history.

A checkpoint is a ``torch.save`` dict readable with ``torch.load(..., weights_only=True)``::

    format: "saropt-detection", version: 1, saropt: <version>
    config: the resolved DetectTrainConfig as a dict (its "model" entry is the DetectorSpec)
    model: state dict;  optimizer, scheduler: state dicts
    epoch: completed epochs;  step: optimiser steps in total;  epoch_step: steps done in the current epoch
    init: what the initialisation loaded;  history: one dict per epoch;  rng: torch CPU RNG state (samplers)

A run folder holds ``last.pt`` (for resuming), ``final.pt`` (written when training completes),
``config.yaml`` and ``history.json``. Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from saropt import __version__
from saropt.errors import CheckpointError

FORMAT = "saropt-detection"
VERSION = 1


def save_detector_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (temporary name in the same folder, then rename).

    Args:
        path: destination ``.pt``.
        state: fields listed in the module docstring; ``format``, ``version`` and ``saropt`` are added.

    Returns:
        The path written.
    """
    import torch

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    try:
        torch.save({"format": FORMAT, "version": VERSION, "saropt": __version__, **state}, tmp)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def resolve_detector_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A ``.pt`` file, or a run folder's ``final.pt`` (else ``last.pt``).

    Raises:
        CheckpointError: nothing usable there.
    """
    p = Path(path)
    if p.is_dir():
        for name in ("final.pt", "last.pt"):
            if (p / name).is_file():
                return p / name
        raise CheckpointError(f"{p} holds no final.pt or last.pt; pass a run folder written by 'saropt detect train'")
    if not p.is_file():
        raise CheckpointError(f"detector checkpoint not found: {p}")
    return p


def load_detector_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a detector checkpoint (file or run folder) and check its format.

    Returns:
        The checkpoint dict with ``path`` added.

    Raises:
        CheckpointError: unreadable, not a saropt detector checkpoint, or written by a newer saropt.
    """
    import torch

    p = resolve_detector_checkpoint(path)
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {p}: {' '.join(str(exc).split())[:200]}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a saropt detector checkpoint (written by 'saropt detect train')")
    if int(ckpt.get("version", 0)) > VERSION:
        raise CheckpointError(f"{p} was written by a newer saropt (format {ckpt['version']}); upgrade saropt")
    for key in ("config", "model"):
        if key not in ckpt:
            raise CheckpointError(f"{p} lacks '{key}'; it is incomplete")
    ckpt["path"] = str(p)
    return ckpt


def detector_from_checkpoint(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """Rebuild a detector from its checkpoint and load the weights.

    Returns:
        ``(model, checkpoint)``; the model is in eval mode on the CPU.

    Raises:
        CheckpointError: unreadable or the weights do not fit the recorded architecture.
    """
    from saropt.detection.models import DetectorSpec, build_detector

    ckpt = load_detector_checkpoint(path)
    spec = DetectorSpec.from_dict(ckpt["config"]["model"])
    model = build_detector(spec)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{ckpt['path']} does not fit a {spec.arch}/{spec.backbone} detector: {' '.join(str(exc).split())[:200]}"
        ) from exc
    model.eval()
    return model, ckpt
