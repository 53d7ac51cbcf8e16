"""Training configuration of a ship detector: a typed dataclass read from YAML, with command-line overrides.

YAML layout (every key optional; ``model`` holds :class:`~saropt.detection.models.DetectorSpec` fields)::

    data: ../shared/data/ships/ssdd/VOC2007
    format: voc
    model: {arch: faster_rcnn, backbone: resnet18, min_size: 352}
    init: random            # or osm:RUN_DIR, osd:RUN_DIR, a weight file
    epochs: 6

Overrides are ``KEY=VALUE`` strings with YAML values; nested model keys use ``model.KEY=VALUE``. The resolved
config is written to ``RUN_DIR/config.yaml`` and stored in every checkpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from saropt.errors import ConfigError

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step", "constant")
#: fields that may change when a run is resumed (``epochs`` and ``max_steps`` change the learning-rate schedule
#: from the resume point on; before the end of warm-up they change nothing that was already done)
RESUMABLE_CHANGES = frozenset({"epochs", "max_steps", "max_minutes", "device", "threads", "num_workers",
                               "log_every", "data", "checkpoint_every", "val_split"})


@dataclass(frozen=True)
class DetectTrainConfig:
    """Everything that defines a detector training run.

    Attributes:
        data: dataset root (VOC/YOLO/DOTA folder, COCO folder or json).
        format: ``voc``, ``coco``, ``yolo`` or ``dota``.
        role: ``sar`` or ``optical`` (normalisation of non-8-bit images).
        train_split: split name (``None``-like ``""`` reads everything, e.g. DOTA).
        val_split: split evaluated (VOC AP@0.5) after each epoch; ``""`` for none.
        classes: class names read as ``ship``.
        difficult: ``flag`` (kept, ignored in evaluation), ``drop`` or ``keep``.
        tile: cut images whose longer side exceeds ``tile`` into chips of ``tile`` px (0 = never).
        tile_overlap: chip overlap fraction.
        max_images: train on a seeded subset of this many images or chips (0 = all).
        model: the detector architecture.
        init: ``random``, ``osm:PATH``, ``osd:PATH`` or a weight file.
        epochs: passes over the training set.
        max_steps: stop after this many optimiser steps in total (0 = epochs decide).
        batch_size: images per step.
        optimizer: ``sgd`` or ``adamw``.
        lr: peak learning rate.
        momentum: SGD momentum.
        weight_decay: weight decay.
        warmup_steps: linear warm-up steps.
        schedule: ``cosine``, ``step`` (x0.1 at 2/3 and 8/9 of training) or ``constant``.
        grad_clip: clip the gradient norm to this (0 = off).
        crop: random training crop side (0 = whole images).
        hflip: random horizontal flips.
        vflip: random vertical flips.
        seed: seed of initialisation, order and augmentation.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda[:N]``.
        threads: torch CPU threads (0 = torch's default).
        num_workers: worker processes that decode and augment training batches (0 = in the training process;
            the batches are the same either way).
        max_minutes: stop after this many minutes (resumable; 0 = no limit).
        checkpoint_every: write ``last.pt`` every this many steps (and at every epoch end).
        log_every: report the running loss every this many steps.
    """

    data: str = ""
    format: str = "voc"
    role: str = "sar"
    train_split: str = "train"
    val_split: str = ""
    classes: tuple[str, ...] = ("ship",)
    difficult: str = "flag"
    tile: int = 0
    tile_overlap: float = 0.2
    max_images: int = 0
    model: dict[str, Any] = field(default_factory=dict)
    init: str = "random"
    epochs: int = 12
    max_steps: int = 0
    batch_size: int = 4
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    schedule: str = "cosine"
    grad_clip: float = 10.0
    crop: int = 0
    hflip: bool = True
    vflip: bool = True
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    num_workers: int = 0
    max_minutes: float = 0.0
    checkpoint_every: int = 100
    log_every: int = 10

    def __post_init__(self) -> None:
        from saropt.detection.datasets import DIFFICULT_MODES, FORMATS
        from saropt.detection.models import DetectorSpec

        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        spec = self.model if isinstance(self.model, DetectorSpec) else DetectorSpec.from_dict(dict(self.model or {}))
        object.__setattr__(self, "model", spec.to_dict())
        if self.format not in FORMATS:
            raise ConfigError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.role not in ("sar", "optical"):
            raise ConfigError(f"role must be 'sar' or 'optical', got {self.role!r}")
        if self.difficult not in DIFFICULT_MODES:
            raise ConfigError(f"difficult must be one of {', '.join(DIFFICULT_MODES)}, got {self.difficult!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("max_steps", "warmup_steps", "crop", "tile", "max_images", "threads", "num_workers"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.tile_overlap < 1.0:
            raise ConfigError(f"tile_overlap must be in [0, 1), got {self.tile_overlap}")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise ConfigError("checkpoint_every and log_every must be >= 1")

    @property
    def spec(self) -> Any:
        """The :class:`~saropt.detection.models.DetectorSpec`."""
        from saropt.detection.models import DetectorSpec

        return DetectorSpec.from_dict(self.model)

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-serialisable fields."""
        d = dataclasses.asdict(self)
        d["classes"] = list(self.classes)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DetectTrainConfig:
        """Build from a mapping.

        Raises:
            ConfigError: unknown keys or invalid values.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown detection config keys: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        try:
            return cls(**dict(d))
        except TypeError as exc:
            raise ConfigError(f"invalid detection config: {exc}") from exc

    @classmethod
    def from_yaml(cls, path: str | Path | None, overrides: Sequence[str] = (), **values: Any) -> DetectTrainConfig:
        """Read a YAML file (or defaults when ``path`` is ``None``), then apply ``KEY=VALUE`` overrides and values.

        Raises:
            ConfigError: unreadable YAML, unknown keys, bad override syntax or invalid values.
        """
        import yaml

        d: dict[str, Any] = {}
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise ConfigError(f"config file not found: {p}")
            try:
                loaded = yaml.safe_load(p.read_text()) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"{p} is not valid YAML: {' '.join(str(exc).split())[:160]}") from exc
            if not isinstance(loaded, dict):
                raise ConfigError(f"{p} must hold a mapping of config keys")
            d.update(loaded)
        d["model"] = dict(d.get("model") or {})
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like KEY=VALUE (e.g. epochs=3, model.backbone=resnet50)")
            key, raw = item.split("=", 1)
            try:
                value = yaml.safe_load(raw) if raw.strip() else ""
            except yaml.YAMLError as exc:
                raise ConfigError(f"override {item!r}: value is not valid YAML") from exc
            if key.startswith("model."):
                d["model"][key[6:]] = value
            else:
                d[key.strip()] = value
        for k, v in values.items():
            if v is not None:
                d[k] = v
        return cls.from_dict(d)
