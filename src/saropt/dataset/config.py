"""Typed configuration of ``saropt build``: scene pairs plus global settings, loaded from YAML with overrides.

A configuration is a plain YAML mapping (see ``configs/build/example.yaml``). :func:`load_config` reads it,
resolves relative paths against the YAML file's folder, applies command-line overrides (``key.sub=value``) and
validates everything into frozen dataclasses; every problem is a one-line :class:`~saropt.errors.ConfigError`
that names the offending key. :meth:`BuildConfig.to_dict` gives the configuration with every default explicit:
it is written as ``build.yaml`` beside the dataset, and its hash decides whether a build may resume.

Patch geometry follows QXS-SAROPT: ``patch_size`` (default 256) with either ``stride`` or ``overlap``
(``stride = round(patch_size * (1 - overlap))``). QXS-SAROPT's paper says "stride 52 to make 20% overlap": that is
inconsistent (stride 52 at 256 px is 79.7% overlap; 20% overlap is stride 205). saropt accepts either and reports
the resulting overlap.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from saropt.errors import ConfigError, InputError

#: tie-point keywords accepted in place of a file path
TIEPOINT_KEYWORDS = ("auto", "gcps", "geocoding", "identity")
#: transform models the registration layer fits
MODELS = ("identity", "similarity", "affine", "projective", "polynomial2", "tps")
SPLIT_METHODS = ("block", "scene", "random")
TIEPOINT_FORMATS = ("csv", "qgis", "checkpoints")

# Keys that change only how a build runs, never what it writes: left out of build.yaml and the config hash.
# (``unit_size`` is not one of them: the warp's rounding and the seamline context's grid follow the unit.)
RUNTIME_KEYS = ("workers", "out")


@dataclass(frozen=True)
class SceneSpec:
    """One scene pair of a build.

    Attributes:
        id: unique name of the pair (letters, digits, ``-_.``); recorded as ``scene_id`` in the index.
        sar: path of the SAR raster.
        optical: path of the optical raster.
        sar_bands: 1-based band indices to read from the SAR raster (``None``: the raster decides).
        optical_bands: 1-based band indices of the optical raster (e.g. ``[3, 2, 1]`` for RGB of a BGR file).
        tiepoints: a tie-point file, or ``"gcps"`` (embedded GCPs), ``"geocoding"`` (both rasters
            georeferenced), ``"identity"`` (already on the same pixel grid), ``"auto"`` (automatic matching), or
            ``None`` (geocoding when both rasters are georeferenced, else an error).
        tiepoints_format: file format of ``tiepoints`` (``None``: guessed from the extension/content).
        tiepoints_origin: pixel origin of the tie-point file (0 or 1; ``None``: the format's documented default).
        model: transform model fitted to the tie points (``None``: the global ``model``; geocoding uses
            ``affine`` for rasters in one CRS and ``projective`` across CRSs unless the scene names a model).
        sar_nodata: SAR value that marks no data, overriding the file's (e.g. 0 for GaoFen-3 fill).
        optical_nodata: optical value that marks no data, overriding the file's (e.g. 0 for Maxar fill).
        subregions: sub-region specs (pixel boxes ``bbox: [col, row, width, height]``, map boxes or polygons),
            each registered on its own; ``None``: the whole overlap is one region.
    """

    id: str
    sar: str
    optical: str
    sar_bands: tuple[int, ...] | None = None
    optical_bands: tuple[int, ...] | None = None
    tiepoints: str | None = None
    tiepoints_format: str | None = None
    tiepoints_origin: int | None = None
    model: str | None = None
    sar_nodata: float | None = None
    optical_nodata: float | None = None
    subregions: tuple[Any, ...] | None = None

    @property
    def tiepoint_mode(self) -> str:
        """``"file"`` for a tie-point path, else the keyword (``None`` resolves later)."""
        if self.tiepoints is None:
            return "default"
        return self.tiepoints if self.tiepoints in TIEPOINT_KEYWORDS else "file"


@dataclass(frozen=True)
class SplitConfig:
    """How kept patches are split into train/val/test.

    Attributes:
        method: ``"block"`` (spatial blocks; overlapping patches never straddle splits: those that would become
            ``buffer``), ``"scene"`` (whole scene pairs per split) or ``"random"`` (per patch; leaks, warns).
        fractions: train, val, test fractions (sum 1).
        block_size: side of the spatial blocks in SAR pixels (``None``: 4 patch sizes).
        seed: seed of the assignment of blocks to splits.
        scenes: ``"scene"`` only: a fixed split for every scene, ``((scene id, split), ...)``, instead of a
            seeded draw, e.g. another dataset's split of the same scenes (``saropt build --split-from``); every
            scene with kept patches must be listed.
    """

    method: str = "block"
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    block_size: int | None = None
    seed: int = 0
    scenes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class OutputConfig:
    """What a build writes.

    Attributes:
        png: write the 8-bit PNG patch pairs (QXS-SAROPT layout).
        geotiff: also write float32 GeoTIFF patches with the original values (SAR as read, optical warped) and
            the SAR window's georeferencing under ``geotiff/{sar,opt}/<n>.tif``.
        write_rejected: write rejected pairs under ``rejected/`` for review.
        png_compression: zlib level of the PNGs with ``png_fast: false`` (0-9).
        png_fast: the fast encoders (with ``saropt[fast]``: ISA-L deflate for SAR and fpng for RGB, about 6x
            faster than OpenCV's fastest settings; else OpenCV's SUB filter with Huffman-only coding,
            2.5x faster than zlib's default strategy); ``false`` uses zlib's default strategy at
            ``png_compression``.
    """

    png: bool = True
    geotiff: bool = False
    write_rejected: bool = True
    png_compression: int = 1
    png_fast: bool = True


@dataclass(frozen=True)
class BuildConfig:
    """Everything ``saropt build`` needs.

    Attributes:
        scenes: the scene pairs.
        out: output folder (runtime option; ``--out`` sets it).
        patch_size: patch side in pixels (SAR grid).
        stride: step between patches (``None``: from ``overlap``).
        overlap: fraction of overlap between neighbouring patches (``None``: from ``stride``; neither: 0.2).
        model: default transform model of the scene pairs.
        robust: RANSAC fitting (flags outliers, never deletes them).
        ransac_threshold_px: RANSAC inlier threshold in SAR pixels.
        sar_mapping: parameters of :class:`saropt.io.radiometry.SarMapping`.
        optical_mapping: parameters of :class:`saropt.io.radiometry.OpticalMapping`.
        quality: parameters of :class:`saropt.quality.QualityConfig` (thresholds of the filters).
        split: train/val/test split settings.
        outputs: what to write.
        unit_size: side of the SAR blocks that make one unit of work (patches are grouped by the block holding
            their top-left pixel; a unit reads its SAR block and warps the optical once). ``None``: 2048 px,
            halved for small scenes until there are at least 8 units (a function of the scenes and the patch
            size, never of the number of workers). It changes scores slightly, so it is part of the configuration
            (hash, ``build.yaml``): OpenCV rounds the warp's fixed-point sample positions per unit, and the
            seamline context's block grid starts at the unit's corner. On the 8000 px benchmark scene, 1024
            against 2048 px units changed 0.014% of the optical pixels by one grey level (SAR patches identical)
            and no flag. There, with 2 workers (``benchmarks/build.py --unit-size``, alternating runs): 1024 px
            units built 164-169 kept pairs/s (peak 535 MB), 2048 px 179-197 (700 MB), 4096 px 153-154
            (1,326 MB): smaller units read and warp more seamline-context margin (346 px a side at 256 px
            patches), larger ones cost more CPU per pixel and memory.
        workers: worker processes (runtime option; 0 = one per CPU core, at most 8).
        seed: seed of every random choice (RANSAC, splits).
    """

    scenes: tuple[SceneSpec, ...]
    out: str | None = None
    patch_size: int = 256
    stride: int | None = None
    overlap: float | None = None
    model: str = "affine"
    robust: bool = True
    ransac_threshold_px: float = 3.0
    sar_mapping: Mapping[str, Any] = field(default_factory=dict)
    optical_mapping: Mapping[str, Any] = field(default_factory=dict)
    quality: Mapping[str, Any] = field(default_factory=dict)
    split: SplitConfig = field(default_factory=SplitConfig)
    outputs: OutputConfig = field(default_factory=OutputConfig)
    unit_size: int | None = None
    workers: int = 0
    seed: int = 0

    @property
    def resolved_stride(self) -> int:
        """The stride in pixels, from ``stride`` or ``overlap`` (default overlap 0.2)."""
        from saropt.tiling.grid import resolve_stride

        if self.stride is None and self.overlap is None:
            return int(resolve_stride(self.patch_size, overlap=0.2))
        return int(resolve_stride(self.patch_size, stride=self.stride, overlap=self.overlap))

    @property
    def resolved_overlap(self) -> float:
        """The overlap fraction the stride gives (``1 - stride / patch_size``)."""
        from saropt.tiling.grid import overlap_of

        return float(overlap_of(self.patch_size, self.resolved_stride))

    @property
    def resolved_workers(self) -> int:
        """Worker processes to use (``workers``, or one per CPU core up to 8 when 0)."""
        if self.workers > 0:
            return self.workers
        return max(1, min(8, os.cpu_count() or 1))

    def model_of(self, scene: SceneSpec) -> str:
        """The transform model of a scene pair (its own, else the global one)."""
        return scene.model or self.model

    def to_dict(self, runtime: bool = False) -> dict[str, Any]:
        """The configuration as plain data with every default explicit.

        Args:
            runtime: include the runtime-only keys (``workers``, ``out``), which never change the outputs.

        Returns:
            A JSON/YAML-serialisable dict; :func:`config_from_dict` reads it back.
        """
        from saropt.quality.config import QualityConfig

        d: dict[str, Any] = {
            "scenes": [_scene_to_dict(s) for s in self.scenes],
            "patch_size": self.patch_size,
            "stride": self.resolved_stride,
            "overlap": round(self.resolved_overlap, 6),
            "model": self.model,
            "robust": self.robust,
            "ransac_threshold_px": float(self.ransac_threshold_px),
            "sar_mapping": _mapping_defaults("sar", self.sar_mapping),
            "optical_mapping": _mapping_defaults("optical", self.optical_mapping),
            "quality": QualityConfig.from_dict(dict(self.quality)).to_dict(),
            "split": {
                "method": self.split.method,
                "fractions": [float(f) for f in self.split.fractions],
                "block_size": self.split.block_size,
                "seed": self.split.seed,
                **({"scenes": dict(self.split.scenes)} if self.split.scenes else {}),
            },
            "outputs": {f.name: getattr(self.outputs, f.name) for f in fields(OutputConfig)},
            "unit_size": self.unit_size,
            "seed": self.seed,
        }
        if runtime:
            d["out"] = self.out
            d["workers"] = self.workers
        return d

    def config_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of :meth:`to_dict` without runtime keys and of the input files'
        fingerprints (:func:`file_fingerprint`): equal hashes, equal outputs. A partial build is resumed, and a
        complete one left alone, only when both the configuration and the files it reads are unchanged."""
        d = self.to_dict(runtime=False)
        paths = {p for s in self.scenes for p in (s.sar, s.optical, s.tiepoints) if isinstance(p, str)}
        files = sorted(p for p in paths if os.path.isfile(p))  # tiepoints may be a keyword (gcps, auto, ...)
        d["input_files"] = {p: file_fingerprint(p) for p in files}
        text = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


#: bytes read per sample by :func:`file_fingerprint`, and the number of samples in a big file
_FP_CHUNK = 1 << 16
_FP_SAMPLES = 16


def file_fingerprint(path: str) -> str:
    """A cheap content fingerprint of a file: its size and a SHA-256 of 16 evenly spaced 64 KB samples (the
    whole file when it is under 1 MB); ``"missing"`` when it cannot be read (the build reports that itself).

    Replacing an input by another file of the same name changes it (a changed header, tile or size does), at
    the cost of about 1 MB read however big the file is; a change confined to bytes between the samples is not
    seen. It does not depend on the path, times or machine, so equal inputs give equal hashes anywhere.
    """
    try:
        size = os.path.getsize(path)
        h = hashlib.sha256(str(size).encode())
        with open(path, "rb") as fh:
            if size <= _FP_CHUNK * _FP_SAMPLES:
                h.update(fh.read())
            else:
                step = (size - _FP_CHUNK) // (_FP_SAMPLES - 1)
                for k in range(_FP_SAMPLES):
                    fh.seek(k * step)
                    h.update(fh.read(_FP_CHUNK))
    except OSError:
        return "missing"
    return h.hexdigest()[:16]


def _scene_to_dict(s: SceneSpec) -> dict[str, Any]:
    return {
        "id": s.id,
        "sar": s.sar,
        "optical": s.optical,
        "sar_bands": None if s.sar_bands is None else list(s.sar_bands),
        "optical_bands": None if s.optical_bands is None else list(s.optical_bands),
        "tiepoints": s.tiepoints,
        "tiepoints_format": s.tiepoints_format,
        "tiepoints_origin": s.tiepoints_origin,
        "model": s.model,
        "sar_nodata": s.sar_nodata,
        "optical_nodata": s.optical_nodata,
        "subregions": None if s.subregions is None else [copy.deepcopy(x) for x in s.subregions],
    }


def _mapping_defaults(role: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Mapping parameters with the mapping class's defaults filled in."""
    from saropt.io import radiometry

    cls = radiometry.SarMapping if role == "sar" else radiometry.OpticalMapping
    try:
        obj = cls(**dict(params))
    except TypeError as exc:
        raise ConfigError(f"{role}_mapping: {_type_error_text(exc)}") from None
    d = obj.to_dict()
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def _type_error_text(exc: TypeError) -> str:
    text = str(exc)
    if "unexpected keyword argument" in text:
        key = text.split("unexpected keyword argument")[-1].strip().strip("'\"")
        return f"unknown key '{key}'"
    return text


# ---------------------------------------------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------------------------------------------

_TOP_KEYS = {f.name for f in fields(BuildConfig)}
_SCENE_KEYS = {f.name for f in fields(SceneSpec)} | {"bands"}
_SPLIT_KEYS = {f.name for f in fields(SplitConfig)}
_OUTPUT_KEYS = {f.name for f in fields(OutputConfig)}


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    base: Mapping[str, Any] | None = None,
) -> BuildConfig:
    """Load a build configuration from YAML, apply ``key.sub=value`` overrides, validate.

    Args:
        path: a YAML file; relative paths inside it are resolved against its folder. ``None``: start from
            ``base`` (or an empty configuration).
        overrides: ``"key.sub=value"`` strings; values are parsed as YAML (``3``, ``true``, ``[1, 2]``, ``null``),
            list items are addressed by index (``scenes.0.tiepoints=pts.csv``).
        base: values merged under the YAML file (the CLI's flags become overrides instead).

    Returns:
        The validated :class:`BuildConfig`.

    Raises:
        ConfigError: unreadable YAML, unknown key, wrong type or value (the message names the key).
    """
    raw: dict[str, Any] = copy.deepcopy(dict(base)) if base else {}
    base_dir = Path.cwd()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"configuration file not found: {p}")
        raw.update(read_yaml(p))
        base_dir = p.resolve().parent
    for item in overrides:
        apply_override(raw, item)
    return config_from_dict(raw, base_dir=base_dir)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; :class:`ConfigError` when it is not one."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(
            f"configuration {path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"configuration {path} must be a YAML mapping, got {type(data).__name__}")
    return data


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``key.sub=value`` override to a raw configuration dict in place.

    Raises:
        ConfigError: no ``=``, or a list index out of range.
    """
    import yaml

    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like key.sub=value")
    key, _, text = item.partition("=")
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{item}' has an empty key")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    parts = key.split(".")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(node, list):
            idx = _list_index(node, part, ".".join(parts[: i + 1]))
            node = node[idx]
            continue
        if part not in node or node[part] is None:
            node[part] = [] if nxt.isdigit() else {}
        node = node[part]
        if not isinstance(node, (dict, list)):
            raise ConfigError(f"override '{item}': '{'.'.join(parts[: i + 1])}' is not a mapping")
    last = parts[-1]
    if isinstance(node, list):
        node[_list_index(node, last, key)] = value
    else:
        node[last] = value


def _list_index(node: list[Any], part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"override key '{key}': no list item {part} (the list has {len(node)})")
    return int(part)


def config_from_dict(raw: Mapping[str, Any], base_dir: str | os.PathLike[str] | None = None) -> BuildConfig:
    """Validate a raw configuration mapping into a :class:`BuildConfig`.

    Args:
        raw: the mapping (as read from YAML, after overrides).
        base_dir: folder relative paths are resolved against (default: the current folder).

    Raises:
        ConfigError: the message names the key at fault.
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    raw = dict(raw)
    _check_keys(raw, _TOP_KEYS, "")

    scenes_raw = raw.get("scenes") or []
    if not isinstance(scenes_raw, list):
        raise ConfigError("scenes: must be a list of scene pairs (each with sar: and optical:)")
    if not scenes_raw:
        raise ConfigError(
            "scenes: no scene pair given: list scenes in the configuration or use --sar/--optical"
        )
    scenes = tuple(_scene(s, i, base) for i, s in enumerate(scenes_raw))
    ids = [s.id for s in scenes]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"scenes: duplicate scene id(s) {', '.join(dup)}: give each pair a unique id")

    patch_size = _int(raw, "patch_size", 256, minimum=8)
    stride = _opt_int(raw, "stride", minimum=1)
    overlap = _opt_float(raw, "overlap")
    if overlap is not None and not 0.0 <= overlap < 1.0:
        raise ConfigError(f"overlap: must be in [0, 1), got {overlap}")
    if stride is not None and overlap is not None:
        # build.yaml writes both; they must agree (QXS-SAROPT's "stride 52 / 20% overlap" does not).
        if math.floor(patch_size * (1.0 - overlap) + 0.5) != stride:
            raise ConfigError(
                f"stride {stride} and overlap {overlap} disagree at patch size {patch_size} (stride "
                f"{stride} is {100 * (1 - stride / patch_size):.1f}% overlap); give one of them"
            )
        overlap = None
    if stride is not None and stride > 4 * patch_size:
        raise ConfigError(f"stride: {stride} is more than 4 patch sizes ({patch_size}); is it a typo?")

    model = _choice(raw, "model", "affine", MODELS)
    for s in scenes:
        if s.model is not None and s.model not in MODELS:
            raise ConfigError(f"scenes[{s.id}].model: unknown model '{s.model}' (choose {', '.join(MODELS)})")

    split = _split(raw.get("split"))
    outputs = _outputs(raw.get("outputs"))
    if not outputs.png and not outputs.geotiff:
        raise ConfigError("outputs: png and geotiff are both false: nothing would be written")

    cfg = BuildConfig(
        scenes=scenes,
        out=_opt_path(raw.get("out"), base, "out"),
        patch_size=patch_size,
        stride=stride,
        overlap=overlap,
        model=model,
        robust=_bool(raw, "robust", True),
        ransac_threshold_px=_float(raw, "ransac_threshold_px", 3.0, minimum=1e-6),
        sar_mapping=_mapping(raw, "sar_mapping"),
        optical_mapping=_mapping(raw, "optical_mapping"),
        quality=_mapping(raw, "quality"),
        split=split,
        outputs=outputs,
        unit_size=_opt_int(raw, "unit_size", minimum=64),
        workers=_int(raw, "workers", 0, minimum=0),
        seed=_int(raw, "seed", 0, minimum=0),
    )
    # Validate the delegated sections now, so errors surface before any work.
    try:
        _ = cfg.resolved_stride
    except ConfigError:
        raise
    except InputError as exc:  # from saropt.tiling.grid
        raise ConfigError(f"stride/overlap: {exc}") from None
    _validate_sections(cfg)
    return cfg


def _validate_sections(cfg: BuildConfig) -> None:
    from saropt.errors import SaroptError
    from saropt.quality.config import QualityConfig

    _mapping_defaults("sar", cfg.sar_mapping)
    _mapping_defaults("optical", cfg.optical_mapping)
    try:
        QualityConfig.from_dict(dict(cfg.quality))
    except TypeError as exc:
        raise ConfigError(f"quality: {_type_error_text(exc)}") from None
    except SaroptError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith("quality") else f"quality: {msg}") from None


def _check_keys(d: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(d) - known)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}' (known keys{' of ' + where if where else ''}: "
            f"{', '.join(sorted(known))})"
        )


def _scene(raw: Any, i: int, base: Path) -> SceneSpec:
    where = f"scenes[{i}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping with sar: and optical:")
    _check_keys(raw, _SCENE_KEYS, where)
    for key in ("sar", "optical"):
        if not raw.get(key):
            raise ConfigError(
                f"{where}.{key}: missing (path of the {key.upper() if key == 'sar' else key} image)"
            )
    sar = _path(raw["sar"], base)
    sid = raw.get("id")
    if sid is None:
        sid = Path(sar).stem
    sid = str(sid)
    if not sid or any(c in sid for c in '/\\:*?"<>|') or sid.startswith("."):
        raise ConfigError(f"{where}.id: '{sid}' is not a valid scene id (use letters, digits, '-', '_', '.')")
    tp = raw.get("tiepoints")
    if tp is not None:
        tp = str(tp)
        if tp not in TIEPOINT_KEYWORDS:
            tp = _path(tp, base)
    fmt = raw.get("tiepoints_format")
    if fmt is not None and str(fmt) not in TIEPOINT_FORMATS:
        raise ConfigError(
            f"{where}.tiepoints_format: unknown format '{fmt}' (choose {', '.join(TIEPOINT_FORMATS)})"
        )
    origin = raw.get("tiepoints_origin")
    if origin is not None and origin not in (0, 1):
        raise ConfigError(f"{where}.tiepoints_origin: must be 0 or 1, got {origin!r}")
    subs = raw.get("subregions")
    if subs is not None:
        if not isinstance(subs, list):
            raise ConfigError(f"{where}.subregions: must be a list of sub-regions")
        subs = tuple(copy.deepcopy(subs))
    sar_bands = _bands(raw.get("sar_bands"), f"{where}.sar_bands")
    opt_bands = _bands(raw.get("optical_bands", raw.get("bands")), f"{where}.optical_bands")
    model = raw.get("model")
    nodata = {}
    for key in ("sar_nodata", "optical_nodata"):
        v = raw.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ConfigError(f"{where}.{key}: must be a number, got {v!r}")
        nodata[key] = None if v is None else float(v)
    return SceneSpec(
        id=sid,
        sar=sar,
        optical=_path(raw["optical"], base),
        sar_bands=sar_bands,
        optical_bands=opt_bands,
        tiepoints=tp,
        tiepoints_format=None if fmt is None else str(fmt),
        tiepoints_origin=origin,
        model=None if model is None else str(model),
        sar_nodata=nodata["sar_nodata"],
        optical_nodata=nodata["optical_nodata"],
        subregions=subs,
    )


def _bands(value: Any, key: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(b, int) and b >= 1 for b in value):
        raise ConfigError(f"{key}: must be a list of 1-based band indices, got {value!r}")
    return tuple(value)


def _path(value: Any, base: Path) -> str:
    p = Path(os.path.expanduser(str(value)))
    if not p.is_absolute():
        p = base / p
    return os.path.normpath(str(p))


def _opt_path(value: Any, base: Path, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"{key}: must be a path, got {value!r}")
    return _path(value, base)


def _int(raw: Mapping[str, Any], key: str, default: int, minimum: int | None = None, where: str = "") -> int:
    value = raw.get(key, default)
    if value is None:
        value = default
    name = f"{where}{key}"
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigError(f"{name}: must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def _opt_int(raw: Mapping[str, Any], key: str, minimum: int | None = None) -> int | None:
    if raw.get(key) is None:
        return None
    return _int(raw, key, 0, minimum)


def _float(
    raw: Mapping[str, Any], key: str, default: float, minimum: float | None = None, where: str = ""
) -> float:
    value = raw.get(key, default)
    if value is None:
        value = default
    name = f"{where}{key}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name}: must be a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}: must be >= {minimum}, got {value}")
    return float(value)


def _opt_float(raw: Mapping[str, Any], key: str) -> float | None:
    if raw.get(key) is None:
        return None
    return _float(raw, key, 0.0)


def _bool(raw: Mapping[str, Any], key: str, default: bool, where: str = "") -> bool:
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(f"{where}{key}: must be true or false, got {value!r}")
    return value


def _choice(raw: Mapping[str, Any], key: str, default: str, choices: Sequence[str], where: str = "") -> str:
    value = raw.get(key, default)
    if value is None:
        value = default
    if value not in choices:
        raise ConfigError(f"{where}{key}: unknown value '{value}' (choose {', '.join(choices)})")
    return str(value)


def _mapping(raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if isinstance(value, str):  # shorthand: sar_mapping: db
        return {"kind": value}
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a mapping, got {value!r}")
    return dict(value)


def _split(value: Any) -> SplitConfig:
    if value is None:
        return SplitConfig()
    if isinstance(value, str):
        value = {"method": value}
    if not isinstance(value, dict):
        raise ConfigError(f"split: must be a mapping, got {value!r}")
    _check_keys(value, _SPLIT_KEYS, "split")
    method = _choice(value, "method", "block", SPLIT_METHODS, "split.")
    fr = value.get("fractions", (0.7, 0.15, 0.15))
    if (
        not isinstance(fr, (list, tuple))
        or len(fr) != 3
        or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and f >= 0 for f in fr)
        or abs(sum(fr) - 1.0) > 1e-6
    ):
        raise ConfigError(f"split.fractions: must be three non-negative numbers summing to 1, got {fr!r}")
    block = value.get("block_size")
    if block is not None:
        block = _int(value, "block_size", 0, minimum=1, where="split.")
    scenes = value.get("scenes") or {}
    if not isinstance(scenes, dict) or not all(v in ("train", "val", "test") for v in scenes.values()):
        raise ConfigError(f"split.scenes: must map scene ids to train, val or test, got {scenes!r}")
    if scenes and method != "scene":
        raise ConfigError(f"split.scenes: fixes whole scenes, so it needs split.method scene, not {method!r}")
    return SplitConfig(
        method=method,
        fractions=(float(fr[0]), float(fr[1]), float(fr[2])),
        block_size=block,
        seed=_int(value, "seed", 0, minimum=0, where="split."),
        scenes=tuple(sorted((str(k), str(v)) for k, v in scenes.items())),
    )


def _outputs(value: Any) -> OutputConfig:
    if value is None:
        return OutputConfig()
    if not isinstance(value, dict):
        raise ConfigError(f"outputs: must be a mapping, got {value!r}")
    _check_keys(value, _OUTPUT_KEYS, "outputs")
    level = _int(value, "png_compression", 1, minimum=0, where="outputs.")
    if level > 9:
        raise ConfigError(f"outputs.png_compression: must be 0-9, got {level}")
    return OutputConfig(
        png=_bool(value, "png", True, "outputs."),
        geotiff=_bool(value, "geotiff", False, "outputs."),
        write_rejected=_bool(value, "write_rejected", True, "outputs."),
        png_compression=level,
        png_fast=_bool(value, "png_fast", True, "outputs."),
    )


def config_to_yaml(cfg: BuildConfig, extra: Mapping[str, Any] | None = None) -> str:
    """``build.yaml`` text: the configuration with defaults explicit, plus ``extra`` sections (resolved state).

    The text is deterministic (no timestamps, runtime keys left out) so that identical builds write identical
    files.
    """
    import yaml

    d = cfg.to_dict(runtime=False)
    if extra:
        d.update(extra)
    header = (
        "# saropt build configuration, fully resolved (every default explicit).\n"
        "# `saropt build build.yaml --out NEW_DIR` rebuilds this dataset; the 'resolved' section is informative.\n"
    )
    return header + yaml.safe_dump(_plain(d), sort_keys=False, default_flow_style=None, width=110)


def _plain(obj: Any) -> Any:
    """Convert numpy scalars/arrays and tuples into plain YAML types."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None  # type: ignore[assignment]
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if np is not None:
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            return float(obj)
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, np.ndarray):
            return _plain(obj.tolist())
    return obj


# ---------------------------------------------------------------------------------------------------------------
# Scene pairs from paths (the CLI's --sar/--optical)
# ---------------------------------------------------------------------------------------------------------------

#: file extensions treated as rasters when --sar/--optical are folders
RASTER_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2", ".img", ".vrt", ".bmp")


def scenes_from_paths(
    sar: str | os.PathLike[str],
    optical: str | os.PathLike[str],
    tiepoints: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Raw scene entries from a SAR and an optical path: two files, or two folders paired by file stem.

    Args:
        sar: a SAR raster, or a folder of them.
        optical: an optical raster, or a folder of them (same file stems as the SAR folder).
        tiepoints: a tie-point file (one pair), a keyword (``gcps``, ``geocoding``, ``identity``, ``auto``),
            a folder of tie-point files named like the scenes' stems (folders of pairs), or ``None``.

    Returns:
        ``[{"id", "sar", "optical", "tiepoints"?}, ...]`` with absolute paths, sorted by stem for folders.

    Raises:
        ConfigError: a path is missing, one path is a folder and the other a file, the folders hold no rasters,
            or some files have no partner (the message lists them).
    """
    s, o = Path(sar), Path(optical)
    for p, what in ((s, "--sar"), (o, "--optical")):
        if not p.exists():
            raise ConfigError(f"{what}: {p} does not exist")
    if s.is_dir() != o.is_dir():
        raise ConfigError("--sar and --optical must both be files or both be folders (paired by file name)")
    if not s.is_dir():
        entry: dict[str, Any] = {"id": s.stem, "sar": str(s.absolute()), "optical": str(o.absolute())}
        if tiepoints is not None:
            entry["tiepoints"] = _tp_value(tiepoints)
        return [entry]

    def rasters(d: Path) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for f in sorted(d.iterdir()):
            if f.is_file() and f.suffix.lower() in RASTER_EXTENSIONS and not f.name.startswith("."):
                if f.stem in found:
                    raise ConfigError(f"{d}: two rasters named {f.stem}.* ({found[f.stem].name}, {f.name})")
                found[f.stem] = f
        return found

    sar_files, opt_files = rasters(s), rasters(o)
    if not sar_files:
        raise ConfigError(f"--sar: no raster files ({', '.join(RASTER_EXTENSIONS)}) in {s}")
    only_sar = sorted(set(sar_files) - set(opt_files))
    only_opt = sorted(set(opt_files) - set(sar_files))
    if only_sar or only_opt:
        parts = []
        if only_sar:
            parts.append(f"SAR without optical: {_names(only_sar)}")
        if only_opt:
            parts.append(f"optical without SAR: {_names(only_opt)}")
        raise ConfigError(f"unpaired images ({'; '.join(parts)}); pairs must share a file name (stem)")
    tp_dir = Path(tiepoints) if tiepoints is not None and Path(tiepoints).is_dir() else None
    if tiepoints is not None and tp_dir is None and str(tiepoints) not in TIEPOINT_KEYWORDS:
        raise ConfigError("with folders of pairs, --tiepoints must be a folder of files named like the pairs")
    entries = []
    for stem in sorted(sar_files):
        entry = {
            "id": stem,
            "sar": str(sar_files[stem].absolute()),
            "optical": str(opt_files[stem].absolute()),
        }
        if tp_dir is not None:
            cands = sorted(f for f in tp_dir.iterdir() if f.is_file() and f.stem == stem)
            if not cands:
                raise ConfigError(f"--tiepoints: no tie-point file named {stem}.* in {tp_dir}")
            entry["tiepoints"] = str(cands[0].absolute())
        elif tiepoints is not None:
            entry["tiepoints"] = str(tiepoints)
        entries.append(entry)
    return entries


def _tp_value(tp: str | os.PathLike[str]) -> str:
    text = str(tp)
    return text if text in TIEPOINT_KEYWORDS else str(Path(text).absolute())


def _names(items: list[str], limit: int = 8) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
