"""Matching checkpoints: model weights together with their training config, data split hashes and history.

A checkpoint is a ``torch.save`` dict readable with ``torch.load(..., weights_only=True)`` (no pickled code)::

    format: "saropt-matching", version: 1, saropt: <version>
    config: the resolved TrainConfig as a dict
    model: state dict;  optimizer, scheduler: state dicts (absent in exported weights)
    epoch: completed epochs;  step: optimiser steps
    data: {"root": str, "sar_channels": int, "splits": {name: {"count": int, "sha256": str}}}
    history: one dict per epoch;  best: the best validation figures so far
    torch_rng: CPU RNG state at the end of the epoch

A run folder holds ``last.pt`` (every epoch, for resuming), ``best.pt`` (best validation ROC-AUC),
``config.yaml``, ``history.json`` and ``learning_curve.png``. Files are written to a temporary name and
renamed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from saropt import __version__
from saropt.errors import CheckpointError

FORMAT = "saropt-matching"
VERSION = 1


def split_fingerprint(dataset: Any) -> dict[str, Any]:
    """Count and SHA-256 of the pair ids (and scenes) of a dataset split, in order, without decoding images.

    Works on every saropt reader (``records``) and on any dataset whose ``meta(i)`` or items carry
    ``meta.id``.
    """
    h = hashlib.sha256()
    n = len(dataset)
    for i in range(n):
        if hasattr(dataset, "records"):
            rec = dataset.records[i]
            key = f"{rec.id}|{rec.scene}"
        elif hasattr(dataset, "meta"):
            m = dataset.meta(i)
            key = f"{m.get('id')}|{m.get('scene', '')}"
        else:
            m = dataset[i]["meta"]
            key = f"{m.get('id')}|{m.get('scene', '')}"
        h.update(key.encode())
        h.update(b"\n")
    return {"count": n, "sha256": h.hexdigest()}


def _atomic_save(obj: Any, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write a checkpoint dict atomically (temporary name, then rename).

    Args:
        path: destination ``.pt`` file.
        state: the fields listed in the module docstring; ``format``, ``version`` and ``saropt`` are added.

    Returns:
        The path written.
    """
    p = Path(path)
    _atomic_save({"format": FORMAT, "version": VERSION, "saropt": __version__, **state}, p)
    return p


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """The checkpoint file for a path: a ``.pt`` file, or a run folder (``best.pt``, else ``last.pt``).

    Raises:
        CheckpointError: nothing usable at ``path``.
    """
    p = Path(path)
    if p.is_dir():
        for name in ("best.pt", "last.pt"):
            if (p / name).is_file():
                return p / name
        raise CheckpointError(
            f"{p} holds no best.pt or last.pt; pass a run folder written by 'saropt match train'"
        )
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    return p


def load_checkpoint(path: str | os.PathLike[str], map_location: str = "cpu") -> dict[str, Any]:
    """Read a matching checkpoint (or a run folder's best one) and check its format.

    Raises:
        CheckpointError: unreadable file or not a saropt matching checkpoint.
    """
    import torch

    p = resolve_checkpoint(path)
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every decode failure means the same thing to the user
        raise CheckpointError(f"cannot read checkpoint {p}: {' '.join(str(exc).split())[:200]}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a saropt matching checkpoint (written by 'saropt match train')")
    if int(ckpt.get("version", 0)) > VERSION:
        raise CheckpointError(
            f"{p} was written by a newer saropt (format version {ckpt['version']}); upgrade saropt"
        )
    for key in ("config", "model", "data"):
        if key not in ckpt:
            raise CheckpointError(f"{p} lacks '{key}'; it is incomplete")
    ckpt["path"] = str(p)
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any]) -> Any:
    """Rebuild the model of a checkpoint and load its weights (backbone weight files are not re-read).

    Raises:
        CheckpointError: the weights do not fit the model the config describes.
    """
    from saropt.matching.config import TrainConfig
    from saropt.matching.models import build_model

    cfg = TrainConfig.from_dict(ckpt["config"])
    model = build_model(
        cfg.model,
        cfg.backbone,
        embedding_dim=cfg.embedding_dim,
        sar_channels=int(ckpt["data"].get("sar_channels", 1)),
        hidden_dim=cfg.hidden_dim,
        dropout=cfg.dropout,
        input_norm=cfg.input_norm,
        backbone_args=cfg.backbone_args,
        pool_grid=cfg.pool_grid,
        dense_width=cfg.dense_width,
    )
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint {ckpt.get('path', '')} does not fit a {cfg.model}/{cfg.backbone} model: "
            f"{' '.join(str(exc).split())[:200]}"
        ) from exc
    return model
