"""Resolve a :class:`~saropt.dataset.config.BuildConfig` into a :class:`BuildPlan`: everything the units need.

Resolving opens the scenes, fixes the radiometric mappings from decimated reads, parses the sub-regions, gets the
tie points and fits one registration per sub-region, checks that the pair overlaps, lays out the patch grid, gives
every patch its global number and groups the patches into units of work. A plan is picklable and is all a worker
needs: a unit is a pure function of (plan, unit).

Patch numbers (the ``<n>`` of ``<n>.png``) run over scene pairs in configuration order, then sub-regions in
order, then the windows of the sub-region row-major; they do not depend on the number of workers.

The patch grid of a region covers the part of the region where the optical image lands on the SAR grid (the
bounding box of the optical footprint mapped through the registration), so a SAR scene much larger than its
optical partner does not produce thousands of empty patches. Patches partly outside the footprint are kept in
the grid and judged by the nodata filter.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from saropt.dataset.config import BuildConfig, SceneSpec
from saropt.errors import (
    ConfigError,
    CRSMismatchError,
    NoOverlapError,
    RasterReadError,
    SaroptError,
    TiePointError,
)
from saropt.io.windows import Window

if TYPE_CHECKING:  # pragma: no cover
    from saropt.io.raster import Scene
    from saropt.io.tiepoints import TiePoints
    from saropt.registration.fit import Registration
    from saropt.tiling.subregions import Subregion

logger = logging.getLogger(__name__)

#: tolerance in pixels for tie points just outside an image edge
TIEPOINT_EDGE_TOLERANCE_PX = 1.0


@dataclass(frozen=True)
class RegionPlan:
    """One sub-region of a scene pair: its registration and its patch windows.

    Attributes:
        index: position of the region in its scene pair.
        name: the sub-region's name (``"full"`` without sub-regions).
        subregion: the parsed sub-region (SAR pixel box or polygon).
        registration: the fitted optical -> SAR registration used for the region.
        footprint: bounding window of the optical image on the SAR grid, inside the region (``None`` only for
            a region without overlap, which never reaches a plan).
        windows: patch windows, row-major (SAR pixels).
        first_patch_id: patch number of ``windows[0]``; the others follow in order.
    """

    index: int
    name: str
    subregion: Subregion
    registration: Registration
    footprint: Window
    windows: tuple[Window, ...]
    first_patch_id: int


@dataclass(frozen=True)
class ScenePlan:
    """One scene pair, resolved.

    Attributes:
        index: position of the pair in the configuration.
        spec: the configuration entry.
        sar: the SAR scene.
        opt: the optical scene.
        sar_mapping: the resolved SAR 8-bit mapping.
        opt_mapping: the resolved optical 8-bit mapping.
        tiepoints: the tie points used (``None`` for identity/geocoding without points).
        regions: the sub-regions.
    """

    index: int
    spec: SceneSpec
    sar: Scene
    opt: Scene
    sar_mapping: Any
    opt_mapping: Any
    tiepoints: TiePoints | None
    regions: tuple[RegionPlan, ...]


@dataclass(frozen=True)
class Unit:
    """A unit of work: the patches of one region whose top-left pixel falls in one SAR block.

    Attributes:
        uid: stable identifier, ``"<scene>-<region>-<block row>-<block col>"`` (zero padded).
        scene: scene pair index.
        region: region index within the scene pair.
        block: the SAR window covering all the unit's patches (read once, warped once).
        patch_ids: the patches' global numbers.
        windows: the patches' SAR windows.
    """

    uid: str
    scene: int
    region: int
    block: Window
    patch_ids: tuple[int, ...]
    windows: tuple[Window, ...]

    @property
    def row_key(self) -> str:
        """``"<scene>-<region>-<block row>"``: the units of one block row share it."""
        return self.uid.rsplit("-", 1)[0]


@dataclass(frozen=True)
class BuildPlan:
    """Everything a build needs after resolution.

    Attributes:
        config: the configuration.
        config_hash: its hash (see :meth:`BuildConfig.config_hash`).
        stride: patch stride in pixels.
        overlap: overlap fraction the stride gives.
        scenes: the resolved scene pairs.
        units: the units of work, in patch-number order of their first patch.
        n_patches: total patch windows.
        unit_size: side of the SAR blocks that group patches into units (``config.unit_size`` or
            :func:`auto_unit_size`).
    """

    config: BuildConfig
    config_hash: str
    stride: int
    overlap: float
    scenes: tuple[ScenePlan, ...]
    units: tuple[Unit, ...]
    n_patches: int
    unit_size: int

    def region_of(self, unit: Unit) -> tuple[ScenePlan, RegionPlan]:
        sp = self.scenes[unit.scene]
        return sp, sp.regions[unit.region]


ProgressFn = Callable[[str], None]


def resolve_plan(cfg: BuildConfig) -> BuildPlan:
    """Open the scenes, register every sub-region and lay out the patches and units.

    Args:
        cfg: the validated configuration.

    Returns:
        The :class:`BuildPlan`.

    Raises:
        RasterReadError: a file is missing or unreadable.
        BandLayoutError: a raster's bands do not fit its role.
        TiePointError: tie points are missing, too few, degenerate or outside an image.
        CRSMismatchError: geocoding was asked for and a scene is not georeferenced, or the CRSs cannot be related.
        NoOverlapError: the optical image does not land on the SAR image (or on a sub-region) with room for a patch.
        ConfigError: an inconsistent configuration (e.g. automatic tie points without the module).
    """
    stride = cfg.resolved_stride
    overlap = cfg.resolved_overlap
    scenes: list[ScenePlan] = []
    next_id = 0
    for i, spec in enumerate(cfg.scenes):
        sp = _resolve_scene(cfg, i, spec, stride, next_id)
        scenes.append(sp)
        for r in sp.regions:
            next_id += len(r.windows)
    unit_size = cfg.unit_size if cfg.unit_size is not None else auto_unit_size(scenes, cfg.patch_size)
    units = tuple(_make_units(scenes, unit_size))
    n = next_id
    if n == 0:
        raise NoOverlapError(
            f"no {cfg.patch_size} px patch fits inside the sub-regions where the images overlap; use a smaller "
            "--patch-size or larger sub-regions"
        )
    logger.info(
        "plan: %d scene pair(s), %d region(s), %d patch windows (patch %d, stride %d, overlap %.1f%%), %d units",
        len(scenes),
        sum(len(s.regions) for s in scenes),
        n,
        cfg.patch_size,
        stride,
        100 * overlap,
        len(units),
    )
    return BuildPlan(cfg, cfg.config_hash(), stride, overlap, tuple(scenes), units, n, unit_size)


# ---------------------------------------------------------------------------------------------------------------


def _resolve_scene(cfg: BuildConfig, index: int, spec: SceneSpec, stride: int, first_id: int) -> ScenePlan:
    from saropt.io.radiometry import OpticalMapping, SarMapping
    from saropt.io.raster import open_scene
    from saropt.tiling.subregions import parse_subregions

    for key, path in (("sar", spec.sar), ("optical", spec.optical)):
        if not os.path.exists(path):
            raise RasterReadError(f"scene '{spec.id}': {key} image not found: {path}")
    sar = open_scene(spec.sar, "sar", bands=spec.sar_bands)
    opt = open_scene(spec.optical, "optical", bands=spec.optical_bands)
    if spec.sar_nodata is not None:
        sar = replace(sar, nodata=spec.sar_nodata)
    if spec.optical_nodata is not None:
        opt = replace(opt, nodata=spec.optical_nodata)
    logger.info(
        "scene %s: SAR %dx%d %s%s, optical %dx%d x%d %s%s",
        spec.id,
        sar.width,
        sar.height,
        sar.dtype,
        " (georeferenced)" if sar.georeferenced else "",
        opt.width,
        opt.height,
        opt.count,
        opt.dtype,
        " (georeferenced)" if opt.georeferenced else "",
    )
    sar_mapping = SarMapping(**dict(cfg.sar_mapping)).resolve(sar)
    opt_mapping = OpticalMapping(**dict(cfg.optical_mapping)).resolve(opt)

    try:
        subs = parse_subregions(
            list(spec.subregions) if spec.subregions else None,
            width=sar.width,
            height=sar.height,
            pixel_to_map=sar.pixel_to_map if sar.georeferenced else None,
            map_to_pixel=sar.map_to_pixel if sar.georeferenced else None,
        )
    except NoOverlapError as exc:
        raise NoOverlapError(f"scene '{spec.id}': {exc}") from None
    except Exception as exc:
        if type(exc).__name__ == "InputError":
            raise ConfigError(f"scenes[{spec.id}].subregions: {exc}") from None
        raise

    mode = _tiepoint_mode(spec, sar, opt)
    model = cfg.model_of(spec)
    tiepoints = _scene_tiepoints(spec, mode, sar, opt)

    regions: list[RegionPlan] = []
    next_id = first_id
    for j, sub in enumerate(subs):
        where = f"scene '{spec.id}'" + ("" if sub.name == "full" else f", sub-region '{sub.name}'")
        reg = _register_region(cfg, spec, mode, model, sar, opt, sub, tiepoints, where)
        footprint = _footprint(reg.transform, opt, sar, sub.bbox)
        if footprint is None:
            raise NoOverlapError(
                f"{where}: the optical image does not overlap the SAR image under the {reg.method} registration; "
                "check that the pair shows the same area and the tie points"
            )
        if footprint.width < cfg.patch_size or footprint.height < cfg.patch_size:
            raise NoOverlapError(
                f"{where}: the SAR/optical overlap is only {footprint.width}x{footprint.height} px, smaller than "
                f"one {cfg.patch_size} px patch; use a smaller --patch-size or check the registration"
            )
        windows = _region_windows(sub, footprint, cfg.patch_size, stride)
        logger.info(
            "%s: %s registration (%s, %d tie points, RMSE %.3f px), overlap %s, %d patches",
            where,
            reg.method,
            reg.model,
            0 if reg.tiepoints is None else len(reg.tiepoints),
            reg.rmse_px,
            f"{footprint.width}x{footprint.height}+{footprint.col_off}+{footprint.row_off}",
            len(windows),
        )
        regions.append(RegionPlan(j, sub.name, sub, reg, footprint, tuple(windows), next_id))
        next_id += len(windows)
    return ScenePlan(index, spec, sar, opt, sar_mapping, opt_mapping, tiepoints, tuple(regions))


def _tiepoint_mode(spec: SceneSpec, sar: Scene, opt: Scene) -> str:
    mode = spec.tiepoint_mode
    if mode == "default":
        if sar.georeferenced and opt.georeferenced:
            return "geocoding"
        missing = [n for n, s in (("SAR", sar), ("optical", opt)) if not s.georeferenced]
        raise TiePointError(
            f"scene '{spec.id}': tie points are needed: the {' and '.join(missing)} image"
            f"{'s are' if len(missing) > 1 else ' is'} not georeferenced; give a tie-point file (--tiepoints), "
            "'gcps', 'identity' (--aligned) or 'auto'"
        )
    if mode == "geocoding":
        missing = [n for n, s in (("SAR", sar), ("optical", opt)) if not s.georeferenced]
        if missing:
            raise CRSMismatchError(
                f"scene '{spec.id}': geocoding needs both images georeferenced, but the {' and '.join(missing)} "
                "image has no CRS/geotransform; give tie points instead"
            )
    return mode


def _scene_tiepoints(spec: SceneSpec, mode: str, sar: Scene, opt: Scene) -> TiePoints | None:
    """The scene-wide tie points of a file or of embedded GCPs, checked against both images."""
    if mode == "file":
        from saropt.io.tiepoints import read_tiepoints

        if spec.tiepoints is None or not os.path.isfile(spec.tiepoints):
            raise TiePointError(f"scene '{spec.id}': tie-point file not found: {spec.tiepoints}")
        kwargs: dict[str, Any] = {"fmt": spec.tiepoints_format, "sar": sar, "opt": opt}
        if spec.tiepoints_origin is not None:
            kwargs["origin"] = spec.tiepoints_origin
        try:
            tp = read_tiepoints(spec.tiepoints, **kwargs)
        except TypeError as exc:
            raise ConfigError(
                f"scene '{spec.id}': tiepoints_origin is not supported by this reader: {exc}"
            ) from None
        except TiePointError as exc:
            raise TiePointError(f"scene '{spec.id}': {exc}") from None
    elif mode == "gcps":
        from saropt.io.tiepoints import tiepoints_from_gcps

        try:
            tp = tiepoints_from_gcps(sar, opt)
        except TiePointError as exc:
            raise TiePointError(f"scene '{spec.id}': {exc}") from None
    else:
        return None
    check_tiepoints_inside(tp, sar, opt, f"scene '{spec.id}'")
    return tp


def check_tiepoints_inside(tp: TiePoints, sar: Scene, opt: Scene, where: str) -> None:
    """Raise :class:`TiePointError` when tie points fall outside the SAR or the optical image.

    Convention:
        Pixel coordinates, x = column, y = row, 0-based, pixel centres at integers: an image of width W covers
        ``[-0.5, W - 0.5]``; points up to :data:`TIEPOINT_EDGE_TOLERANCE_PX` beyond that are accepted.
    """
    tol = TIEPOINT_EDGE_TOLERANCE_PX + 0.5
    for name, xy, scene in (("SAR", tp.sar_xy, sar), ("optical", tp.opt_xy, opt)):
        if len(xy) == 0:
            continue
        out = (
            (xy[:, 0] < -tol)
            | (xy[:, 1] < -tol)
            | (xy[:, 0] > scene.width - 1 + tol)
            | (xy[:, 1] > scene.height - 1 + tol)
        )
        if out.any():
            k = int(np.flatnonzero(out)[0])
            raise TiePointError(
                f"{where}: {int(out.sum())} of {len(xy)} tie points lie outside the {name} image "
                f"({scene.width}x{scene.height}), e.g. point {k} at ({xy[k, 0]:.1f}, {xy[k, 1]:.1f}); check the "
                "column order (x_sar,y_sar,x_opt,y_opt), the format and whether the file is 1-based"
            )


def _register_region(
    cfg: BuildConfig,
    spec: SceneSpec,
    mode: str,
    model: str,
    sar: Scene,
    opt: Scene,
    sub: Subregion,
    tiepoints: TiePoints | None,
    where: str,
) -> Registration:
    from saropt.registration import fit as fitmod

    region = None if sub.name == "full" and sub.bbox == sar.window else sub.bbox
    if mode == "identity":
        return fitmod.identity_registration(opt.width, opt.height)
    if mode == "geocoding":
        from saropt.registration.geocoding import geocoding_registration

        # Lay the geocoding lattice over the part of the region the optical image covers, so a small optical
        # image inside a large SAR scene still gets a dense lattice.
        geo_region = _geocoded_footprint(sar, opt, sub.bbox) or region
        gmodel = spec.model or ("affine" if _same_crs(sar.crs, opt.crs) else "projective")
        try:
            return geocoding_registration(sar, opt, region=geo_region, model=gmodel)
        except (TiePointError, NoOverlapError, CRSMismatchError) as exc:
            raise type(exc)(f"{where}: {exc}") from None
    if mode == "auto":
        tp = _auto_tiepoints(sar, opt, region, where)
        method = "auto"
    else:
        if tiepoints is None:
            raise TiePointError(f"{where}: no tie points were read")
        tp = tiepoints
        method = "tiepoints"  # GCP-derived points keep source "gcps" (see registration_method)
        if region is not None:
            inside = _points_in_window(tp.sar_xy, sub.bbox)
            tp = tp.subset(inside)
    try:
        return fitmod.fit_registration(
            tp,
            model=model,
            robust=cfg.robust,
            ransac_threshold_px=cfg.ransac_threshold_px,
            seed=cfg.seed,
            method=method,
        )
    except TiePointError as exc:
        raise TiePointError(f"{where}: {exc}") from None


def registration_method(reg: Registration) -> str:
    """Provenance of a registration: its method, or ``"gcps"`` for tie points taken from embedded GCPs."""
    if reg.method == "tiepoints" and getattr(reg.tiepoints, "source", None) == "gcps":
        return "gcps"
    return str(reg.method)


def _same_crs(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    if a == b:
        return True
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        return bool(CRS.from_wkt(a) == CRS.from_wkt(b))
    except (CRSError, ValueError):  # unparsable CRSs: the geocoding registration reports them
        return False


def _geocoded_footprint(sar: Scene, opt: Scene, region: Window) -> Window | None:
    """SAR pixel window covered by the optical image according to the georeferencing, within ``region``.

    Convention:
        SAR pixel window (x = column, y = row, 0-based); computed from the optical border's pixel centres taken
        through both geotransforms and, when the CRSs differ, reprojected.
    """
    from rasterio.errors import CRSError

    try:
        xy = opt.pixel_to_map(optical_outline(opt, 32))
        if not _same_crs(sar.crs, opt.crs):
            from rasterio.crs import CRS
            from rasterio.warp import transform as rio_transform

            xs, ys = rio_transform(CRS.from_wkt(opt.crs), CRS.from_wkt(sar.crs), xy[:, 0], xy[:, 1])
            xy = np.column_stack([xs, ys])
        pix = sar.map_to_pixel(xy)
    except (SaroptError, CRSError, ValueError):  # the geocoding registration reports CRS problems properly
        return None
    pix = pix[np.isfinite(pix).all(axis=1)]
    if len(pix) == 0:
        return None
    c0, r0 = math.floor(pix[:, 0].min()), math.floor(pix[:, 1].min())
    c1, r1 = math.ceil(pix[:, 0].max()) + 1, math.ceil(pix[:, 1].max()) + 1
    if c1 <= c0 or r1 <= r0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0).intersection(region)


def _auto_tiepoints(sar: Scene, opt: Scene, region: Window | None, where: str) -> TiePoints:
    import importlib

    try:
        auto = importlib.import_module("saropt.registration.auto")
        fn = auto.auto_tiepoints
    except (ImportError, AttributeError):
        raise ConfigError(
            "automatic tie points need saropt.registration.auto (not available in this version); "
            "give a tie-point file instead"
        ) from None
    prior = None
    if sar.georeferenced and opt.georeferenced:
        from saropt.registration.geocoding import geocoding_registration

        try:
            prior = geocoding_registration(sar, opt, region=region).transform
        except SaroptError as exc:  # a prior is a hint only
            logger.info("%s: no geocoding prior for automatic tie points (%s)", where, exc)
    tp = fn(sar, opt, region=region, prior=prior)
    logger.info("%s: %d automatic tie points", where, len(tp))
    return tp


def _points_in_window(xy: np.ndarray, w: Window) -> np.ndarray:
    return (
        (xy[:, 0] >= w.col_off - 0.5)
        & (xy[:, 0] <= w.col_end - 0.5)
        & (xy[:, 1] >= w.row_off - 0.5)
        & (xy[:, 1] <= w.row_end - 0.5)
    )


def optical_outline(opt: Scene, n: int = 64) -> np.ndarray:
    """Pixel centres along the border of the optical image, ``(4n, 2)``, clockwise from the top-left.

    Convention:
        Optical pixel coordinates, x = column, y = row, 0-based, pixel centres at integers.
    """
    w, h = opt.width - 1, opt.height - 1
    t = np.linspace(0.0, 1.0, n, endpoint=False)
    top = np.stack([t * w, np.zeros_like(t)], 1)
    right = np.stack([np.full_like(t, w), t * h], 1)
    bottom = np.stack([w - t * w, np.full_like(t, h)], 1)
    left = np.stack([np.zeros_like(t), h - t * h], 1)
    return np.concatenate([top, right, bottom, left])


def _footprint(transform: Any, opt: Scene, sar: Scene, region: Window) -> Window | None:
    """Bounding window of the optical image's pixel centres on the SAR grid, clipped to ``region``.

    Convention:
        SAR pixel window; a SAR pixel is in the footprint when its centre lies within the bounding box of the
        optical border's pixel centres mapped through ``transform.forward`` (optical -> SAR).
    """
    xy = np.asarray(transform.forward(optical_outline(opt)), dtype=np.float64)
    xy = xy[np.isfinite(xy).all(axis=1)]
    if len(xy) == 0:
        return None
    eps = 1e-6
    c0 = math.ceil(float(xy[:, 0].min()) - eps)
    r0 = math.ceil(float(xy[:, 1].min()) - eps)
    c1 = math.floor(float(xy[:, 0].max()) + eps) + 1
    r1 = math.floor(float(xy[:, 1].max()) + eps) + 1
    if c1 <= c0 or r1 <= r0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0).intersection(region)


def _region_windows(sub: Subregion, footprint: Window, patch_size: int, stride: int) -> list[Window]:
    from saropt.tiling.grid import patch_grid
    from saropt.tiling.subregions import windows_in_subregion

    if sub.polygon is None:
        return patch_grid(footprint, patch_size, stride)
    clipped = replace(sub, bbox=footprint)
    return windows_in_subregion(clipped, patch_size, stride, min_inside=1.0)


#: units wanted at least, so that small scenes still spread over several workers
MIN_UNITS = 8
MAX_UNIT_SIZE = 2048


def auto_unit_size(scenes: list[ScenePlan], patch_size: int) -> int:
    """The SAR block side of a unit: 2048 px, halved while the plan would have fewer than 8 units.

    Large blocks amortise the warp and the reads (a block is read and warped once); small scenes need smaller
    blocks to keep several workers busy. The result depends on the plan only, never on the number of workers.
    """
    size = MAX_UNIT_SIZE

    def count(u: int) -> int:
        return sum(
            len({(w.row_off // u, w.col_off // u) for w in rp.windows}) for sp in scenes for rp in sp.regions
        )

    while size > 2 * patch_size and count(size) < MIN_UNITS:
        size //= 2
    return size


def _make_units(scenes: list[ScenePlan], unit_size: int) -> list[Unit]:
    """Group each region's patches by the SAR block (``unit_size`` px) holding their top-left pixel."""
    units: list[Unit] = []
    for sp in scenes:
        for rp in sp.regions:
            groups: dict[tuple[int, int], list[tuple[int, Window]]] = {}
            for k, w in enumerate(rp.windows):
                key = (w.row_off // unit_size, w.col_off // unit_size)
                groups.setdefault(key, []).append((rp.first_patch_id + k, w))
            for (by, bx), items in sorted(groups.items()):
                block = items[0][1]
                for _, w in items[1:]:
                    block = block.union(w)
                units.append(
                    Unit(
                        uid=f"{sp.index:03d}-{rp.index:03d}-{by:04d}-{bx:04d}",
                        scene=sp.index,
                        region=rp.index,
                        block=block,
                        patch_ids=tuple(pid for pid, _ in items),
                        windows=tuple(w for _, w in items),
                    )
                )
    return units
