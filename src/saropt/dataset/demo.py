"""The embedded default: build a dataset from a synthetic scene pair with a known warp and report the error.

``saropt demo --out DIR`` writes ``DIR/scene/`` (the synthetic SAR/optical pair, its noisy tie points and the
true optical -> SAR matrix) and builds ``DIR/dataset/`` from it with an affine RANSAC registration. The reported
registration error compares the fitted transform with the truth over a grid of SAR pixels. Running it again
reuses the scene (same size and seed) and finds the dataset complete, or resumes it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saropt.dataset.build import BuildResult, ProgressFn, build_dataset
from saropt.dataset.config import BuildConfig, config_from_dict

logger = logging.getLogger(__name__)

DEMO_META = "demo.json"


@dataclass(frozen=True)
class DemoResult:
    """The outcome of :func:`run_demo`.

    Attributes:
        scene_dir: folder of the synthetic pair.
        build: the build's result (its ``root`` is the dataset folder).
        truth: the true 3x3 optical -> SAR matrix.
        truth_rmse_px: RMSE between the fitted and the true transform over a grid of SAR pixels (SAR px).
        truth_max_px: the largest such error (SAR px).
        overview: path of the first overview PNG.
    """

    scene_dir: Path
    build: BuildResult
    truth: np.ndarray
    truth_rmse_px: float
    truth_max_px: float
    overview: Path | None


def run_demo(
    out: str | os.PathLike[str],
    *,
    size: int = 1536,
    seed: int = 0,
    workers: int | None = None,
    patch_size: int = 256,
    progress: ProgressFn | None = None,
) -> DemoResult:
    """Generate (or reuse) a synthetic pair in ``out/scene`` and build ``out/dataset`` from it.

    Args:
        out: the demo folder.
        size: side of the synthetic SAR scene in pixels (>= 2 patch sizes).
        seed: seed of the synthetic scene.
        workers: worker processes (default: one per core).
        patch_size: patch side in pixels.
        progress: ``progress(done, total)`` over units.

    Returns:
        The :class:`DemoResult`.

    Raises:
        InputError: ``size`` too small for two patches.
        OutputExistsError: ``out`` holds files that are not a saropt demo.
    """
    from saropt.errors import InputError, OutputExistsError

    if size < 2 * patch_size:
        raise InputError(f"--size {size} is too small: the demo needs at least {2 * patch_size} px")
    root = Path(out).absolute()
    if root.exists() and not root.is_dir():
        raise OutputExistsError(f"{root} is a file; choose a folder for the demo")
    if root.is_dir():
        extra = sorted(p.name for p in root.iterdir() if p.name not in ("scene", "dataset"))
        if extra:
            raise OutputExistsError(
                f"{root} holds files that are not a saropt demo ({', '.join(extra[:3])}); choose an empty or new folder"
            )
    scene_dir = root / "scene"
    pair, regenerated = _scene(scene_dir, size, seed)
    cfg = demo_config(pair, root / "dataset", patch_size=patch_size, seed=seed)
    result = build_dataset(cfg, root / "dataset", workers=workers, overwrite=regenerated, progress=progress)
    truth = np.asarray(pair["opt_to_sar"], dtype=np.float64)
    fitted = _fitted_transform(result.root)
    rmse, worst = transform_error(fitted, truth, size_of(pair))
    ovs = result.summary.get("overviews") or []
    overview = result.root / ovs[0] if ovs else None
    logger.info("demo: registration error vs truth RMSE %.3f px (max %.3f px)", rmse, worst)
    return DemoResult(scene_dir, result, truth, rmse, worst, overview)


def demo_config(pair: dict[str, Any], out: Path, *, patch_size: int = 256, seed: int = 0) -> BuildConfig:
    """The demo's build configuration: noisy tie points, affine RANSAC, 20% overlap, block split."""
    raw = {
        "scenes": [
            {
                "id": "synthetic",
                "sar": pair["sar_path"],
                "optical": pair["opt_path"],
                "tiepoints": pair["tiepoints_path"],
            }
        ],
        "out": str(out),
        "patch_size": patch_size,
        "overlap": 0.2,
        "model": "affine",
        "robust": True,
        "seed": seed,
    }
    return config_from_dict(raw)


def size_of(pair: dict[str, Any]) -> tuple[int, int]:
    """SAR ``(width, height)`` of a pair record."""
    w, h = pair["sar_size"]
    return int(w), int(h)


def _scene(scene_dir: Path, size: int, seed: int) -> tuple[dict[str, Any], bool]:
    """The synthetic pair's record; generated unless ``scene_dir`` already holds one of this size and seed."""
    meta_path = scene_dir / DEMO_META
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            meta = {}
        if (
            meta.get("size") == size
            and meta.get("seed") == seed
            and all(Path(meta.get(k, "")).is_file() for k in ("sar_path", "opt_path", "tiepoints_path"))
        ):
            logger.info("demo: reusing the synthetic pair in %s", scene_dir)
            return meta, False
    from saropt.io.images import atomic_path
    from saropt.synthetic import make_scene_pair

    logger.info("demo: generating a %dx%d synthetic pair (seed %d) in %s", size, size, seed, scene_dir)
    scene_dir.mkdir(parents=True, exist_ok=True)
    sp = make_scene_pair(scene_dir, sar_size=(size, size), seed=seed)
    meta = {
        "size": size,
        "seed": seed,
        "sar_path": str(Path(sp.sar_path).absolute()),
        "opt_path": str(Path(sp.opt_path).absolute()),
        "tiepoints_path": str(Path(sp.tiepoints_path).absolute()),
        "opt_to_sar": np.asarray(sp.opt_to_sar, dtype=np.float64).tolist(),
        "sar_size": [size, size],
    }
    with atomic_path(meta_path) as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=2))
    return meta, True


def _fitted_transform(root: Path) -> Any:
    """The first region's fitted transform, read back from ``build.yaml``."""
    import yaml

    from saropt.registration.transforms import transform_from_dict

    data = yaml.safe_load((root / "build.yaml").read_text())
    reg = data["resolved"]["scenes"][0]["regions"][0]["registration"]
    return transform_from_dict(reg["transform"])


def transform_error(
    fitted: Any, truth: np.ndarray, sar_size: tuple[int, int], n: int = 32
) -> tuple[float, float]:
    """RMSE and maximum of ``fitted.forward - truth`` over an ``n x n`` grid of SAR pixels.

    The grid's SAR pixels are taken into the optical image with the true matrix's inverse, then back into SAR
    with the fitted transform; the error is the distance to where they started.

    Convention:
        Pixel coordinates, x = column, y = row, 0-based, pixel centres at integers; ``truth`` and ``fitted``
        map optical -> SAR.

    Returns:
        ``(rmse_px, max_px)`` in SAR pixels.
    """
    w, h = sar_size
    xs, ys = np.meshgrid(np.linspace(0, w - 1, n), np.linspace(0, h - 1, n))
    sar = np.stack([xs.ravel(), ys.ravel()], axis=1)
    hom = np.c_[sar, np.ones(len(sar))] @ np.linalg.inv(truth).T
    opt = hom[:, :2] / hom[:, 2:3]
    err = np.linalg.norm(np.asarray(fitted.forward(opt)) - sar, axis=1)
    return float(np.sqrt(np.mean(err**2))), float(err.max())
