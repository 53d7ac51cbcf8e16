"""Train a ship detector: seeded, resumable, GPU when present else CPU, with progress events.

The run folder (``out``) receives ``config.yaml`` (the resolved config), ``last.pt`` every ``checkpoint_every``
steps and at each epoch end (resume point), ``history.json`` and, when training completes, ``final.pt`` (weights,
config and history; no optimiser state). Calling :func:`train_detector` again on the same folder resumes from
``last.pt``: the sample order and augmentation of an epoch depend only on ``(seed, epoch)``, so an interrupted
and resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saropt.detection.config import RESUMABLE_CHANGES, DetectTrainConfig
from saropt.errors import ConfigError, EmptyResultError, OutputExistsError, require
from saropt.matching.train import resolve_device  # one device rule for every trainer

log = logging.getLogger(__name__)

Event = dict[str, Any]


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train_detector`.

    Attributes:
        run_dir: the run folder.
        completed: ``True`` when every epoch/step ran (``final.pt`` written); ``False`` after ``max_minutes``.
        epochs: completed epochs.
        steps: optimiser steps in total.
        history: one dict per completed epoch.
        checkpoint: ``final.pt`` when completed, else ``last.pt``.
        init: what the initialisation loaded.
    """

    run_dir: Path
    completed: bool
    epochs: int
    steps: int
    history: list[dict[str, Any]]
    checkpoint: Path
    init: dict[str, Any]


def training_records(cfg: DetectTrainConfig, split: str | None = None) -> list[Any]:
    """The records a config trains on (or of another split): read, tiled when asked, subset when asked.

    Raises:
        DatasetNotFoundError: the data are missing.
        EmptyResultError: no image with a ship.
    """
    from saropt.detection.datasets import read_records, subset
    from saropt.detection.tiling import tile_records

    if not cfg.data:
        raise ConfigError("no dataset given: set 'data' in the config or pass --data")
    sp = cfg.train_split if split is None else split
    recs = read_records(cfg.format, cfg.data, sp or None, classes=cfg.classes, difficult=cfg.difficult)
    if cfg.tile:
        recs = tile_records(recs, cfg.tile, cfg.tile_overlap, only_larger_than=cfg.tile)
    if split is None:
        recs = subset(recs, cfg.max_images, cfg.seed)
        if not any(r.num_boxes for r in recs):
            raise EmptyResultError(f"split {sp!r} of {cfg.data} has no ship box to train on")
    return recs


def _lr_factor(cfg: DetectTrainConfig, step: int, total: int) -> float:
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return 0.001 + (1.0 - 0.001) * step / cfg.warmup_steps
    if cfg.schedule == "constant" or total <= 0:
        return 1.0
    if cfg.schedule == "step":
        return 1.0 if step < total * 2 / 3 else (0.1 if step < total * 8 / 9 else 0.01)
    t = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, t))))


def _check_resume(run_dir: Path, cfg: DetectTrainConfig) -> dict[str, Any] | None:
    from saropt.detection.checkpoint import load_detector_checkpoint

    last = run_dir / "last.pt"
    if not last.is_file():
        if (run_dir / "final.pt").is_file():
            raise OutputExistsError(f"{run_dir} holds a finished run (final.pt); choose another --out")
        return None
    ckpt = load_detector_checkpoint(last)
    old = DetectTrainConfig.from_dict(ckpt["config"]).to_dict()
    new = cfg.to_dict()
    changed = sorted(k for k in new if k not in RESUMABLE_CHANGES and old.get(k) != new.get(k))
    if changed:
        raise OutputExistsError(
            f"{run_dir} holds a run with another configuration (differs in {', '.join(changed)}); "
            "use another --out or --no-resume"
        )
    return ckpt


def train_detector(
    cfg: DetectTrainConfig, out: str | os.PathLike[str], *, resume: bool = True,
    on_event: Callable[[Event], None] | None = None,
) -> TrainResult:
    """Train (or resume training) a detector.

    Args:
        cfg: the resolved configuration.
        out: run folder.
        resume: continue from ``out/last.pt`` when present (otherwise an existing run there is an error).
        on_event: called with ``{"event": "step"|"epoch"|"done", ...}`` dicts (progress display).

    Returns:
        The outcome.

    Raises:
        ConfigError: invalid configuration or device.
        OutputExistsError: ``out`` holds a different or finished run.
        CheckpointError: the initialisation weights do not fit.
        EmptyResultError: nothing to train on; RuntimeError if the loss becomes NaN.
    """
    require("torch", "torch")
    import torch
    import yaml

    from saropt.detection.checkpoint import save_detector_checkpoint
    from saropt.detection.init import initialise
    from saropt.detection.models import build_detector
    from saropt.detection.samples import Augment, ShipDataset

    run_dir = Path(out)
    emit = on_event or (lambda ev: None)
    ckpt = _check_resume(run_dir, cfg) if resume else None
    if not resume and ((run_dir / "last.pt").exists() or (run_dir / "final.pt").exists()):
        raise OutputExistsError(f"{run_dir} already holds a run; remove it or resume")
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    records = training_records(cfg)
    val_records = training_records(cfg, cfg.val_split) if cfg.val_split else []
    spec = cfg.spec
    ds = ShipDataset(records, cfg.role, spec.in_chans, Augment(cfg.crop, cfg.hflip, cfg.vflip), cfg.seed)

    torch.manual_seed(cfg.seed)
    model = build_detector(spec)
    init_report = initialise(model, cfg.init).to_dict() if ckpt is None else dict(ckpt.get("init", {}))
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt: Any = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(ds) / cfg.batch_size)
    total = cfg.max_steps or cfg.epochs * steps_per_epoch
    epoch, step, epoch_step = 0, 0, 0
    history: list[dict[str, Any]] = []
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        epoch, step, epoch_step = int(ckpt["epoch"]), int(ckpt["step"]), int(ckpt.get("epoch_step", 0))
        history = list(ckpt.get("history", []))
        if "rng" in ckpt:  # the RPN / RoI samplers draw from torch's global generator
            torch.set_rng_state(ckpt["rng"])
        log.info("resuming %s at epoch %d, step %d", run_dir, epoch + 1, step)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    log.info("training %s/%s (%s) on %d images, %d steps/epoch, device %s", spec.arch, spec.backbone, cfg.init,
             len(ds), steps_per_epoch, device)

    def save(name: str, final: bool = False) -> Path:
        state: dict[str, Any] = {
            "config": cfg.to_dict(), "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "epoch": epoch, "step": step, "epoch_step": epoch_step, "init": init_report, "history": history,
            "rng": torch.get_rng_state(),
        }
        if not final:
            state["optimizer"] = opt.state_dict()
        return save_detector_checkpoint(run_dir / name, state)

    t_start = time.monotonic()
    stopped = False
    while epoch < cfg.epochs and step < total and not stopped:
        ds.set_epoch(epoch)
        order = np.random.default_rng((cfg.seed, epoch)).permutation(len(ds))
        model.train()
        losses: list[float] = []
        t_epoch = time.monotonic()
        stop = min(steps_per_epoch, epoch_step + total - step)  # max_steps may end the run inside this epoch
        batches = epoch_batches(ds, order, epoch_step, cfg.batch_size, cfg.num_workers, device.type == "cuda", stop)
        for b, (images, targets) in enumerate(batches, start=epoch_step):
            images = [im.to(device, non_blocking=True) for im in images]
            targets = [{"boxes": t["boxes"].to(device), "labels": t["labels"].to(device)} for t in targets]
            for g in opt.param_groups:
                g["lr"] = cfg.lr * _lr_factor(cfg, step, total)
            loss_dict = model(images, targets)
            loss = sum(loss_dict.values())
            if not torch.isfinite(loss):
                raise RuntimeError(f"training loss became {float(loss)} at step {step}; lower lr or check the data")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            step += 1
            epoch_step = b + 1
            losses.append(float(loss.detach()))
            if step % cfg.log_every == 0 or epoch_step == steps_per_epoch:
                emit({"event": "step", "epoch": epoch + 1, "epochs": cfg.epochs, "step": epoch_step,
                      "steps": steps_per_epoch, "loss": float(np.mean(losses[-cfg.log_every:])),
                      "lr": opt.param_groups[0]["lr"], "global_step": step, "total_steps": total})
                log.debug("epoch %d step %d/%d loss %.4f", epoch + 1, epoch_step, steps_per_epoch, losses[-1])
            if step % cfg.checkpoint_every == 0:
                save("last.pt")
            if cfg.max_minutes and (time.monotonic() - t_start) / 60.0 >= cfg.max_minutes:
                stopped = True
                break
        if stopped and epoch_step < steps_per_epoch and step < total:
            save("last.pt")
            break
        entry: dict[str, Any] = {"epoch": epoch + 1, "steps": step, "train_loss": float(np.mean(losses)) if losses
                                 else float("nan"), "seconds": round(time.monotonic() - t_epoch, 1)}
        if val_records:
            from saropt.detection.evaluate import predict_records
            from saropt.detection.metrics import voc_ap

            preds = predict_records(model, val_records, cfg.role, device=device)
            entry["val_ap50"] = voc_ap(preds, val_records).ap
        history.append(entry)
        epoch += 1
        epoch_step = 0
        emit({"event": "epoch", **entry, "epochs": cfg.epochs})
        log.info("epoch %d/%d: loss %.4f%s (%.0f s)", entry["epoch"], cfg.epochs, entry["train_loss"],
                 f", val AP50 {entry['val_ap50']:.4f}" if "val_ap50" in entry else "", entry["seconds"])
        save("last.pt")
    _write_text(run_dir / "history.json", json.dumps(history, indent=2))
    completed = not stopped
    if completed:
        path = save("final.pt", final=True)
    else:
        path = run_dir / "last.pt"
        log.info("stopped after %.1f minutes at step %d; run again to resume", cfg.max_minutes, step)
    emit({"event": "done", "completed": completed, "steps": step, "checkpoint": str(path)})
    return TrainResult(run_dir, completed, epoch, step, history, path, init_report)


def epoch_batches(
    ds: Any, order: np.ndarray, start: int, batch_size: int, num_workers: int = 0, pin_memory: bool = False,
    stop: int | None = None,
) -> Iterable[tuple[list[Any], list[dict[str, Any]]]]:
    """The batches ``start .. stop - 1`` of one epoch: ``order`` cut into ``batch_size`` runs of indices.

    A ``torch.utils.data.DataLoader`` decodes and augments them, in this process or in ``num_workers`` worker
    processes (the dataset's draws depend only on its seed, epoch and index, so the batches are the same).

    Args:
        ds: the dataset (``ShipDataset``), its epoch already set.
        order: the epoch's sample order.
        start: the first batch (resuming inside an epoch).
        batch_size: samples per batch (the last may be shorter).
        num_workers: worker processes; 0 decodes in this process.
        pin_memory: page-locked batches, for copies to a GPU.
        stop: one past the last batch (``None``: the epoch's end).

    Returns:
        An iterable of ``(images, targets)`` as :func:`saropt.detection.samples.collate` gives them.
    """
    import torch

    from saropt.detection.samples import collate

    n = math.ceil(len(order) / batch_size) if stop is None else stop
    index = [[int(i) for i in order[b * batch_size:(b + 1) * batch_size]] for b in range(start, n)]
    # a generator of its own: creating the iterator must not draw from torch's global one, which the RPN and RoI
    # samplers use (the run would then differ from an in-process one, and resume inexactly); as in matching
    return torch.utils.data.DataLoader(ds, batch_sampler=index, collate_fn=collate, num_workers=num_workers,
                                       pin_memory=pin_memory, generator=torch.Generator().manual_seed(0))


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
