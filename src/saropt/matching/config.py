"""Training configuration of a matching model: a typed dataclass read from YAML, with command-line overrides.

The fully resolved configuration is written beside every run (``RUN_DIR/config.yaml``) and stored in every
checkpoint, so a checkpoint alone says how it was trained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from saropt.errors import ConfigError

#: configuration fields that may change when a run is resumed (they do not change what was trained so far)
RESUMABLE_CHANGES = frozenset(
    # init_from only sets the starting weights: a resumed run continues from its own checkpoint
    {"epochs", "max_minutes", "device", "threads", "num_workers", "log_every", "data", "init_from"}
)

SAMPLERS = ("patches", "scene_crops")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a matching training run.

    Attributes:
        model: ``"bnn"`` (Bridge Neural Network), ``"pseudo_siamese"`` (BCE classifier baseline) or
            ``"dense"`` (per-pixel descriptors and FFT correlation, trained to localise; :class:`DenseMatcher
            <saropt.matching.models.DenseMatcher>`).
        backbone: timm model name of both (unshared) branches (not used by ``dense``).
        embedding_dim: BNN embedding size ``n``; ``dense``: descriptor channels per pixel.
        dense_width: ``dense``: channels of the full-resolution stage (x2, x4 and x8 at 1/2, 1/4 and 1/8
            resolution).
        search_radius: ``dense``: training offsets lie in ``[-r, r]^2`` native pixels; a training window of side
            ``crop`` gives a template of side ``crop - 2r``.
        backbone_args: extra keyword arguments for ``timm.create_model`` (e.g. ``{"channels": [32, 64, 128,
            256], "stem_width": 16}`` for a narrower ResNet); stored in checkpoints.
        backbone_weights: optional local weight files ``{"sar": path, "opt": path}``; nothing is downloaded.
        pool_grid: ``1``: global average pooling of the backbone's last feature map (the usual classifier
            input); ``g > 1``: average pooling to a ``g x g`` grid, flattened, so codes keep the layout of the
            patch (:func:`saropt.matching.models.branch_encoder`).
        hidden_dim: pseudo-siamese fusion head width.
        dropout: pseudo-siamese fusion head dropout.
        input_norm: ``"standardize"`` (zero mean, unit variance per image and channel, inside the model) or
            ``"none"``.
        crop: native crop side taken from each patch (0 = whole patch).
        size: model input side after resizing (0 = no resize).
        augment: ``"none"``, ``"flip"`` or ``"flip_rot90"`` (joint, training only).
        sampler: ``"patches"`` (each epoch visits every training patch once, a random ``crop`` inside it) or
            ``"scene_crops"`` (windows drawn anywhere in the training scenes, rebuilt from their patches:
            :mod:`saropt.matching.scene_crops`; needs patch windows, as ``saropt build`` datasets have).
        samples_per_epoch: ``scene_crops``: pairs per epoch (0 = the number of training patches).
        crops_per_scene: ``scene_crops``: consecutive pairs of a batch drawn from the same scene, so in-batch
            negatives include spatial neighbours.
        crop_spread: ``scene_crops``: ``> 0`` places the other windows of a same-scene group within this many
            native pixels of its first window (shifted views of one place as negatives; 0 = anywhere). Measured
            with the CPU recipe (192 px, two seeds, s1s2-1024 validation): level with 0 on every figure but
            recall@5 (0.933 / 0.911 against 0.906 / 0.897), and no fewer retrieval misses in the query's scene.
        shift_negatives: ``scene_crops``, BNN: optical windows of the same place shifted by a few pixels, drawn per
            positive, that the SAR window must rank below its own (a softmax over the positive and its shifted
            copies); 0 = none. They make codes sensitive to small offsets, which localisation and near-neighbour
            negatives need, at the cost of one more optical forward pass each. Measured on the s1s2-1024 split
            (an 8-epoch fine-tune of the CPU recipe, 2 copies shifted 1-12 px): no validation figure moved
            beyond what the same fine-tune without them gave (hard-negative accuracy 0.929 both, localisation
            unchanged), and 12 epochs from scratch with weight 2 and 2-12 px shifts left the shifted-copy
            cross-entropy at chance (1.10 against ln 3 = 1.10) on validation windows: at 20 m pixels through a
            stride-32 network the CPU recipe's model does not resolve a few-pixel offset.
        shift_range: ``[min, max]`` of the shifts' larger component, native pixels.
        shift_weight: weight of the shifted-negative ranking term.
        init_from: a saropt checkpoint (file or run folder) whose model weights initialise this run (same
            architecture); empty = from scratch (or ``backbone_weights``).
        scale_jitter: ``scene_crops``: native crop side ``crop * s`` with ``s`` log-uniform in
            ``[1 / (1 + scale_jitter), 1 + scale_jitter]`` (0 = fixed).
        negative_min_offset: in-batch re-pairings of two windows of the same scene whose centres are closer
            than this fraction of ``crop`` in both x and y are not used as negatives (they overlap: they are
            not non-matches). 0 uses every re-pairing.
        neg_margin: BNN: negatives are pushed to ``d >= neg_margin``, loss ``max(0, neg_margin - d)^2`` (1.0
            is the paper's ``(1 - d)^2``).
        nce_weight: BNN: weight of an added symmetric InfoNCE term on the same distances, logits
            ``-d / temperature`` over the batch (0 = the paper's loss alone). The model, its distance and its
            decision rule stay the BNN's.
        temperature: InfoNCE softmax temperature on ``d``.
        negatives_per_positive: in-batch re-pairings (rolls) per positive pair.
        epochs: number of epochs.
        batch_size: positive pairs per batch.
        optimizer: ``"adamw"``, ``"adam"`` or ``"sgd"``.
        lr: peak learning rate.
        weight_decay: weight decay.
        momentum: SGD momentum.
        schedule: ``"cosine"`` (with linear warm-up) or ``"constant"``.
        warmup_epochs: linear warm-up length in epochs (fractions allowed).
        bn_recalibration_batches: at the end of every epoch, recompute BatchNorm statistics over this many
            training batches with the final weights ("precise BN"; 0 = keep the running averages).
        threshold: default decision threshold on the score (BNN: ``1 - d``; 0.5 is the paper's ``d < 0.5``).
        seed: seed of everything random (initialisation, order, crops, negatives).
        data: dataset folder (normally given on the command line).
        data_format: reader name (``saropt`` for ``saropt build`` output; see ``saropt.data.registry``).
        train_split: split name used for training.
        val_split: split name used for validation and threshold calibration.
        val_pairs: at most this many validation pairs per epoch (balanced; 0 = all).
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"`` or ``"cuda"``/``"cuda:N"``.
        threads: CPU threads for torch (0 = torch's default).
        num_workers: DataLoader worker processes.
        channels_last: use channels-last memory format (measure first with benchmarks/matching.py: on this
            CPU it helped resnet50 at 256 px and slowed resnet18 at 64 px).
        amp: bf16 autocast for the forward pass (GPU recipe; distances and losses stay float32).
        max_minutes: stop training after this many minutes (0 = no limit); the run is then resumable.
        log_every: log the running loss every this many steps.
    """

    model: str = "bnn"
    backbone: str = "resnet18"
    embedding_dim: int = 64
    dense_width: int = 16
    search_radius: int = 8
    backbone_args: dict[str, Any] = field(default_factory=dict)
    backbone_weights: dict[str, str] = field(default_factory=dict)
    pool_grid: int = 1
    hidden_dim: int = 256
    dropout: float = 0.3
    input_norm: str = "standardize"
    crop: int = 0
    size: int = 0
    augment: str = "flip"
    sampler: str = "patches"
    samples_per_epoch: int = 0
    crops_per_scene: int = 1
    crop_spread: int = 0
    shift_negatives: int = 0
    shift_range: list[int] = field(default_factory=lambda: [2, 16])
    shift_weight: float = 1.0
    init_from: str = ""
    scale_jitter: float = 0.0
    negative_min_offset: float = 0.5
    neg_margin: float = 1.0
    nce_weight: float = 0.0
    temperature: float = 0.1
    negatives_per_positive: int = 1
    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    schedule: str = "cosine"
    warmup_epochs: float = 0.5
    bn_recalibration_batches: int = 16
    threshold: float = 0.5
    seed: int = 0
    data: str = ""
    data_format: str = "saropt"
    train_split: str = "train"
    val_split: str = "val"
    val_pairs: int = 512
    device: str = "auto"
    threads: int = 0
    num_workers: int = 0
    channels_last: bool = False
    amp: bool = False
    max_minutes: float = 0.0
    log_every: int = 20

    def __post_init__(self) -> None:
        checks: list[tuple[bool, str]] = [
            (
                self.model in ("bnn", "pseudo_siamese", "dense"),
                f"model must be 'bnn', 'pseudo_siamese' or 'dense', got {self.model!r}",
            ),
            (self.dense_width >= 1 and self.search_radius >= 1, "dense_width and search_radius must be >= 1"),
            (
                self.model != "dense" or (self.size == 0 and self.scale_jitter == 0),
                "the dense matcher works on native pixels: size and scale_jitter must be 0",
            ),
            (
                self.model != "dense" or self.crop >= 2 * self.search_radius + 8,
                "dense: crop must be >= 2 * search_radius + 8 (the training window holds the template and "
                "its offsets)",
            ),
            (self.embedding_dim >= 1, "embedding_dim must be >= 1"),
            (1 <= self.pool_grid <= 16, "pool_grid must be in 1..16"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (
                self.batch_size >= 2,
                "batch_size must be >= 2 (negatives are made by re-pairing inside a batch)",
            ),
            (self.negatives_per_positive >= 1, "negatives_per_positive must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (
                self.optimizer in ("adamw", "adam", "sgd"),
                f"optimizer must be adamw, adam or sgd, got {self.optimizer!r}",
            ),
            (
                self.schedule in ("cosine", "constant"),
                f"schedule must be cosine or constant, got {self.schedule!r}",
            ),
            (
                self.augment in ("none", "flip", "flip_rot90"),
                f"augment must be none, flip or flip_rot90, got {self.augment!r}",
            ),
            (self.crop >= 0 and self.size >= 0, "crop and size must be >= 0"),
            (
                self.sampler in SAMPLERS,
                f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}",
            ),
            (
                self.samples_per_epoch >= 0 and self.crops_per_scene >= 1 and self.crop_spread >= 0,
                "samples_per_epoch and crop_spread must be >= 0, crops_per_scene >= 1",
            ),
            (0.0 <= self.scale_jitter <= 1.0, "scale_jitter must be in [0, 1]"),
            (
                self.shift_negatives >= 0
                and self.shift_weight >= 0.0
                and len(self.shift_range) == 2
                and 1 <= int(self.shift_range[0]) <= int(self.shift_range[1]),
                "shift_negatives and shift_weight must be >= 0, shift_range [min, max] with 1 <= min <= max",
            ),
            (
                self.shift_negatives == 0 or (self.model == "bnn" and self.sampler == "scene_crops"),
                "shift_negatives needs model bnn and sampler scene_crops",
            ),
            (0.0 <= self.negative_min_offset <= 2.0, "negative_min_offset must be in [0, 2]"),
            (0.0 < self.neg_margin <= 1.0, "neg_margin must be in (0, 1]"),
            (self.nce_weight >= 0.0 and self.temperature > 0.0, "nce_weight must be >= 0, temperature > 0"),
            (
                self.input_norm in ("none", "standardize"),
                f"input_norm must be none or standardize, got {self.input_norm!r}",
            ),
            (0.0 <= self.threshold <= 1.0, "threshold must be in [0, 1]"),
            (self.bn_recalibration_batches >= 0, "bn_recalibration_batches must be >= 0"),
            (
                self.val_pairs >= 0 and self.threads >= 0 and self.num_workers >= 0,
                "val_pairs, threads, num_workers must be >= 0",
            ),
            (
                set(self.backbone_weights) <= {"sar", "opt"},
                "backbone_weights keys must be 'sar' and/or 'opt'",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)

    def to_dict(self) -> dict[str, Any]:
        """A plain, YAML/JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        """Build from a mapping; unknown keys are an error naming the valid ones.

        Raises:
            ConfigError: unknown keys or invalid values.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(
                f"unknown training config keys {unknown}; valid keys: {', '.join(sorted(names))}"
            )
        kw = dict(d)
        if kw.get("backbone_weights") is None:
            kw["backbone_weights"] = {}
        if kw.get("backbone_args") is None:
            kw["backbone_args"] = {}
        if not isinstance(kw["backbone_args"], Mapping):
            raise ConfigError("backbone_args must be a mapping of timm.create_model keyword arguments")
        kw["backbone_args"] = {str(k): v for k, v in dict(kw["backbone_args"]).items()}
        kw["backbone_weights"] = {k: str(v) for k, v in dict(kw["backbone_weights"]).items() if v}
        if "shift_range" in kw:
            sr = kw["shift_range"]
            if not isinstance(sr, (list, tuple)) or len(sr) != 2:
                raise ConfigError(f"shift_range must be [min, max] in pixels, got {sr!r}")
            kw["shift_range"] = [_coerce(cls, "shift_negatives", v) for v in sr]
        try:
            kw = {k: _coerce(cls, k, v) for k, v in kw.items()}
            return cls(**kw)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"invalid training config: {exc}") from exc

    def with_overrides(self, overrides: Mapping[str, Any]) -> "TrainConfig":
        """A copy with some fields replaced (values are coerced to the field types)."""
        d = self.to_dict()
        d.update(overrides)
        return TrainConfig.from_dict(d)

    def resume_differences(self, other: "TrainConfig") -> list[str]:
        """Fields that differ from ``other`` and would make resuming train a different model."""
        a, b = self.to_dict(), other.to_dict()
        return sorted(k for k in a if a[k] != b[k] and k not in RESUMABLE_CHANGES)


def _coerce(cls: type, name: str, value: Any) -> Any:
    ftype = {f.name: f.type for f in fields(cls)}[name]
    t = str(ftype)
    if value is None:
        return value
    if t == "int":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        return int(value)
    if t == "float":
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        return float(value)
    if t == "bool":
        if isinstance(value, str):
            if value.lower() in ("true", "yes", "1", "on"):
                return True
            if value.lower() in ("false", "no", "0", "off"):
                return False
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return bool(value)
    if t == "str":
        return str(value)
    return value


def load_config(path: str | Path | None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a training configuration from YAML and apply overrides.

    Args:
        path: YAML file with :class:`TrainConfig` keys (or ``None`` for the defaults).
        overrides: values that replace the file's (e.g. ``{"data": "DIR", "epochs": 2}``); a dotted key sets
            one entry of a mapping (``{"backbone_weights.sar": "/path/w.pth"}``).

    Returns:
        The resolved configuration.

    Raises:
        ConfigError: unreadable YAML, not a mapping, unknown keys or invalid values.
    """
    import yaml

    d: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p} is not valid YAML: {' '.join(str(exc).split())}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p} must hold a mapping of training config keys")
        d = loaded
    for key, value in dict(overrides or {}).items():
        if "." in key:  # nested key, e.g. backbone_weights.sar=/path/w.pth
            head, sub = key.split(".", 1)
            inner = d.get(head) or {}
            if not isinstance(inner, dict):
                raise ConfigError(f"{head} is not a mapping; cannot set {key}")
            d[head] = {**inner, sub: value}
        else:
            d[key] = value
    return TrainConfig.from_dict(d)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse a ``key=value`` command-line override; the value is read as YAML (``3``, ``1e-3``, ``true``...).

    Raises:
        ConfigError: without ``=``.
    """
    import yaml

    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. epochs=5")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip(), value
