"""Units of work: read a SAR block once, warp the optical onto it once, cut, score and write its patch pairs.

A unit is a pure function of (plan, unit): it writes the same bytes whichever process runs it and whenever. It
writes its patch images first (each atomically) and its record, ``.saropt/units/<uid>.json``, last: a unit whose
record exists is finished. The unit decides ``kept`` from its own filters only; the near-duplicate filter runs
across all units when the build is finalised and moves duplicates to ``rejected/`` then.

Workers receive the plan once (process-pool initializer) and then unit indices only.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saropt.dataset.layout import Layout
from saropt.dataset.plan import BuildPlan, Unit
from saropt.io.windows import Window

logger = logging.getLogger(__name__)

RECORD_VERSION = 1


@dataclass(frozen=True)
class UnitResult:
    """What a finished unit reports to the parent process.

    Attributes:
        uid: the unit's id.
        n_patches: patch pairs scored.
        n_kept: pairs its filters kept (before the near-duplicate filter).
        skipped: ``True`` when the unit was already done (resume).
    """

    uid: str
    n_patches: int
    n_kept: int
    skipped: bool = False


# --------------------------------------------------------------------------------------------- worker process state

_WORKER: dict[str, Any] = {}


#: GDAL block cache (MB) of a worker process and of the main process. GDAL's default is 5% of the RAM per
#: process, which a build reading a large scene fills to no use: with it, peak memory grows with the scene size.
#: A worker runs neighbouring units in turn (:func:`saropt.dataset.build.unit_chunks`) and the next unit finds the
#: tiles the two grown blocks share still decoded if the cache holds one unit's reads (a 2048 px unit of an 8-bit
#: RGB optical and 16-bit SAR with its context margin: about 38 MB; measured on the benchmark scene, reading and
#: warping took 137 ms a unit for units alternating between workers, 115 ms in row order with 64 MB, 100 ms with
#: 96 MB, 93 ms with 128 MB); the main process reads whole scenes decimated (statistics,
#: overviews), where a pixel-interleaved file's tiles are decoded once per band unless they stay cached: 256 MB
#: keeps that cost moderate (measured on a 20000 x 20000 RGB GeoTIFF: 8.6 s CPU and 190 MB, against 3.7 s and
#: 970 MB with GDAL's default).
GDAL_CACHE_MB_WORKER = 96
GDAL_CACHE_MB_MAIN = 256


def gdal_env(megabytes: int = GDAL_CACHE_MB_MAIN) -> Any:
    """A ``rasterio.Env`` that bounds GDAL's block cache to ``megabytes``."""
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=megabytes * 2**20)  # bytes: rasterio hands it to GDALSetCacheMax


def init_worker(plan: BuildPlan, root: str, threads: int = 1) -> None:
    """Process-pool initializer: keep the plan, bound GDAL's cache, limit OpenCV's threads (one process per core)."""
    _keep_large_allocations()
    env = gdal_env(GDAL_CACHE_MB_WORKER)
    env.__enter__()  # for the life of the worker process
    _WORKER["env"] = env
    _WORKER["plan"] = plan
    _WORKER["layout"] = Layout.for_grid(root, plan.config.patch_size, plan.overlap)
    _WORKER["quality"] = _quality_config(plan)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:  # pragma: no cover
        pass


def _keep_large_allocations() -> None:
    """Let glibc's malloc reuse a worker's large blocks instead of mapping fresh pages for each (Linux only).

    A unit allocates a few arrays of 4-35 MB per block (reads, the warp, masks); glibc maps blocks over its
    mmap threshold (at most 32 MB, adapted as blocks are freed) afresh and unmaps them when freed, so every unit
    faults the same memory in again. Raising the thresholds keeps them in the heap for reuse. Measured on the
    8000 px benchmark scene, 5 alternating fresh runs each: 4.0% less CPU time and 0.21 s (4%) less wall time
    in every pair of runs, peak memory +20 MB. Only worker processes do this; a build run inline leaves the
    caller's allocator alone.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows): nothing to tune
        return
    mallopt(-3, 256 * 2**20)  # M_MMAP_THRESHOLD
    mallopt(-1, 512 * 2**20)  # M_TRIM_THRESHOLD


def run_units_in_worker(indices: tuple[int, ...]) -> list[UnitResult]:
    """Run units ``indices`` of the plan given to :func:`init_worker`, in turn (a chunk of neighbours:
    :func:`saropt.dataset.build.unit_chunks`)."""
    plan: BuildPlan = _WORKER["plan"]
    return [run_unit(plan, plan.units[i], _WORKER["layout"], _WORKER["quality"]) for i in indices]


def _quality_config(plan: BuildPlan) -> Any:
    from saropt.quality.config import QualityConfig

    return QualityConfig.from_dict(dict(plan.config.quality))


# ----------------------------------------------------------------------------------------------------- the unit


def unit_done(layout: Layout, unit: Unit) -> bool:
    """Whether a unit finished earlier: its record exists, is readable and every file it lists exists."""
    path = layout.unit_record(unit.uid)
    if not path.is_file():
        return False
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if rec.get("version") != RECORD_VERSION or rec.get("uid") != unit.uid:
        return False
    patches = rec.get("patches", [])
    if [p.get("patch_id") for p in patches] != list(unit.patch_ids):
        return False
    root = layout.root
    for p in patches:
        for key in ("sar_path", "opt_path", "sar_tif", "opt_tif"):
            rel = p.get(key)
            if rel is None:
                continue
            if not (root / rel).is_file():
                # The finaliser may have moved a near-duplicate to rejected/ already (interrupted finalise).
                alt = _moved_location(rel)
                if alt is None or not (root / alt).is_file():
                    return False
    return True


def _moved_location(rel: str) -> str | None:
    if rel.startswith(("rejected/", "geotiff/")):
        return None
    return f"rejected/{rel}"


def read_unit_record(layout: Layout, uid: str) -> dict[str, Any]:
    """The record a unit wrote (``.saropt/units/<uid>.json``)."""
    return json.loads(layout.unit_record(uid).read_text())


def run_unit(plan: BuildPlan, unit: Unit, layout: Layout, qcfg: Any) -> UnitResult:
    """Process one unit: read, warp, cut, score, write patches, then write the record.

    Args:
        plan: the build plan.
        unit: the unit.
        layout: the output layout.
        qcfg: the :class:`saropt.quality.QualityConfig`.

    Returns:
        Its :class:`UnitResult`.

    Convention:
        All windows are SAR pixel windows (x = column, y = row, 0-based); the optical image is warped onto the
        SAR grid through the region's transform (``inverse``: SAR -> optical).
    """
    from saropt.io.images import atomic_path
    from saropt.quality import decide, patch_scores

    sp, rp = plan.region_of(unit)
    cfg = plan.config
    out = cfg.outputs
    # The block read and warped: the unit's own, plus the margin the seamline filter's context needs, so that
    # a patch at the unit's edge is judged like one inside it.
    block = _context_block(unit.block, sp, cfg.patch_size, qcfg)

    arrays = read_block(plan, unit, block, float_values=out.geotiff)
    sar_u8, opt_u8, valid = arrays.sar_u8, arrays.opt_u8, arrays.valid
    context = _seam_context(sar_u8, opt_u8, valid, cfg.patch_size, qcfg)

    records: list[dict[str, Any]] = []
    n_kept = 0
    for pid, w in zip(unit.patch_ids, unit.windows):
        rs, cs = _local(w, block)
        s8 = np.ascontiguousarray(sar_u8[rs, cs])
        o8 = np.ascontiguousarray(opt_u8[rs, cs])
        v = valid[rs, cs]
        scores = patch_scores(s8, o8, v, qcfg, None if context is None else context.at((cs.start, rs.start)))
        flags, reasons = decide(scores, qcfg)
        kept = not any(flags.values())
        n_kept += kept
        rec: dict[str, Any] = {
            "patch_id": pid,
            "window": [w.col_off, w.row_off, w.width, w.height],
            "scores": {k: _plain(v_) for k, v_ in scores.items()},
            "flags": {k: bool(f) for k, f in flags.items()},
            "reasons": list(reasons),
            "kept": kept,
            "sar_path": None,
            "opt_path": None,
            "sar_tif": None,
            "opt_tif": None,
        }
        if out.png and (kept or out.write_rejected):
            sar_rel, opt_rel = layout.patch_relpaths(pid, kept)
            write_patch_png(layout.root / sar_rel, s8, out.png_compression, out.png_fast)
            write_patch_png(layout.root / opt_rel, o8, out.png_compression, out.png_fast)
            rec["sar_path"], rec["opt_path"] = sar_rel, opt_rel
        if out.geotiff:
            rec["sar_tif"], rec["opt_tif"] = _write_geotiffs(
                layout,
                sp,
                pid,
                w,
                arrays.sar_data[:, rs, cs],
                arrays.sar_valid[rs, cs],
                arrays.opt_data[:, rs, cs],
                arrays.opt_valid[rs, cs],
            )
        records.append(rec)

    from saropt.dataset.overview import write_unit_view

    vr, vc = _local(unit.block, block)  # the view covers the unit's own block, not the context's margin
    write_unit_view(layout.unit_view(unit.uid), sp, rp, unit.block, sar_u8[vr, vc], opt_u8[vr, vc])
    record = {"version": RECORD_VERSION, "uid": unit.uid, "patches": records}
    path = layout.unit_record(unit.uid)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(record, separators=(",", ":")))
    return UnitResult(unit.uid, len(records), n_kept)


@dataclass(frozen=True)
class BlockArrays:
    """A SAR block and the optical warped onto it, in 8 bits (and as values when asked for).

    Attributes:
        sar_u8: ``(h, w)`` uint8 SAR after the scene's 8-bit mapping.
        opt_u8: ``(h, w, 3)`` or ``(h, w)`` uint8 optical on the SAR grid after its 8-bit mapping.
        valid: ``(h, w)`` bool, True where both are valid.
        sar_valid: ``(h, w)`` bool SAR validity.
        opt_valid: ``(h, w)`` bool warped optical validity.
        sar_data: ``(bands, h, w)`` float32 SAR values (``float_values=True`` only, else ``None``).
        opt_data: ``(bands, h, w)`` float32 warped optical values (``float_values=True`` only, else ``None``).
    """

    sar_u8: np.ndarray
    opt_u8: np.ndarray
    valid: np.ndarray
    sar_valid: np.ndarray
    opt_valid: np.ndarray
    sar_data: np.ndarray | None = None
    opt_data: np.ndarray | None = None


def read_block(plan: BuildPlan, unit: Unit, block: Window, *, float_values: bool = False) -> BlockArrays:
    """Read a SAR block of a unit's scene and warp the optical onto it through the unit's registration.

    Args:
        plan: the build plan.
        unit: a unit of the plan (its scene pair and sub-region's registration are used).
        block: the SAR pixel window to read (any window: outside the scene reads as invalid).
        float_values: also return the float32 values (a build writing GeoTIFF patches); otherwise the 8-bit
            fast paths run (no float copies).

    Returns:
        The :class:`BlockArrays`.

    Convention:
        ``block`` is a SAR pixel window (x = column, y = row, 0-based); the optical is resampled bilinearly onto
        it through the region's transform (``inverse``: SAR -> optical).
    """
    from saropt.registration.warp import warp_optical, warp_optical_u8

    sp, rp = plan.region_of(unit)
    lut = None if float_values or sp.sar.is_complex or sp.sar.iq else sp.sar_mapping.lut(sp.sar.dtype)
    if lut is not None:
        sar_data, sar_valid = sp.sar.read(block, boundless=True, native=True)
        sar_u8 = sp.sar_mapping.apply_lut(sar_data, sar_valid, lut)
    else:
        sar_data, sar_valid = sp.sar.read(block, boundless=True)
        sar_u8 = sp.sar_mapping.apply(sar_data, sar_valid)
    fast_opt = None
    if not float_values and sp.opt_mapping.kind == "none":
        fast_opt = warp_optical_u8(sp.opt, rp.registration.transform, block)
    if fast_opt is not None:
        opt_u8, opt_valid = fast_opt
        opt_data = None
    else:
        opt_data, opt_valid = warp_optical(sp.opt, rp.registration.transform, block)
        opt_u8 = sp.opt_mapping.apply(opt_data, opt_valid)
    if opt_u8.ndim == 3 and opt_u8.shape[2] == 1:
        opt_u8 = opt_u8[:, :, 0]
    values = (sar_data, opt_data) if float_values else (None, None)
    return BlockArrays(sar_u8, opt_u8, sar_valid & opt_valid, sar_valid, opt_valid, *values)


def read_region(
    plan: BuildPlan, scene: int, region: int = 0, max_side: int | None = None
) -> tuple[Window, BlockArrays]:
    """A sub-region's overlap with the optical image, read as a build reads it.

    Reads the region's footprint (the bounding window of the optical image on the SAR grid inside the region;
    its central ``max_side x max_side`` part when given) and warps the optical onto it through the region's
    registration. Meant for evaluating filters on whole scenes (``saropt.quality.seam_trials``): it holds the
    window in memory.

    Returns:
        ``(window, arrays)``: the SAR pixel window read and its :class:`BlockArrays`.

    Raises:
        InputError: when the plan has no patches in that region.
    """
    from saropt.errors import InputError

    for unit in plan.units:
        if unit.scene == scene and unit.region == region:
            f = plan.region_of(unit)[1].footprint
            cw, ch = (
                (f.width, f.height) if max_side is None else (min(f.width, max_side), min(f.height, max_side))
            )
            window = Window(f.col_off + (f.width - cw) // 2, f.row_off + (f.height - ch) // 2, cw, ch)
            return window, read_block(plan, unit, window)
    raise InputError(f"the build plan has no patches in region {region} of scene pair {scene}")


def _context_block(core: Window, sp: Any, patch: int, qcfg: Any) -> Window:
    """The unit's block grown by :func:`saropt.quality.seamline.context_margin` inside the SAR scene (the
    block itself when the seamline filter is off)."""
    if "seamline" not in qcfg.enabled:
        return core
    from saropt.quality.seamline import context_margin

    grown = core.pad(context_margin(patch)).clip(sp.sar.width, sp.sar.height)
    return core if grown is None else grown


def _seam_context(sar: np.ndarray, opt: np.ndarray, valid: np.ndarray, patch: int, qcfg: Any) -> Any:
    """Block means of the unit's grown block (:func:`_context_block`), to follow seamline candidates beyond
    their patch (None: filter off)."""
    if "seamline" not in qcfg.enabled:
        return None
    from saropt.quality.seamline import detector_block_px, seam_context

    return seam_context(sar, opt, valid, detector_block_px(patch))


def write_patch_png(path: Path, img: np.ndarray, level: int, fast: bool) -> None:
    """Write an 8-bit grey or RGB patch as PNG, atomically, with deterministic bytes.

    ``fast`` uses :func:`saropt.io.png.encode_png` (SAR unfiltered with ISA-L deflate, RGB with fpng when
    installed, else UP and ISA-L) when the optional ``isal`` package is installed, else OpenCV with the SUB
    filter and Huffman-only coding; ``fast=False`` uses zlib's default strategy at ``level``. Per 256 px pair
    of the 8000 px benchmark scene, measured in one run: 0.5 ms and 46 + 109 KB with ISA-L and fpng, 1.3 ms
    and 46 + 102 KB with ISA-L alone, 3.4 ms and 55 + 96 KB with OpenCV's fast settings (an earlier run: 6.0 ms
    and 52 + 98 KB with ``fast=False`` at level 1). Any PNG decoder reads them all.
    """
    import cv2

    from saropt.io import png
    from saropt.io.images import ImageWriteError, atomic_write_bytes

    if fast and png.available():
        data = png.encode_png(img)
    else:
        a = img[:, :, ::-1] if img.ndim == 3 else img  # OpenCV encodes BGR
        params = [cv2.IMWRITE_PNG_COMPRESSION, int(level)]
        if fast:
            params += [
                cv2.IMWRITE_PNG_FILTER,
                cv2.IMWRITE_PNG_FILTER_SUB,
                cv2.IMWRITE_PNG_STRATEGY,
                cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY,
            ]
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(a), params)
        if not ok:
            raise ImageWriteError(f"cannot encode PNG {path}")
        data = buf.tobytes()
    atomic_write_bytes(path, data)


def _local(w: Window, block: Window) -> tuple[slice, slice]:
    r0 = w.row_off - block.row_off
    c0 = w.col_off - block.col_off
    return slice(r0, r0 + w.height), slice(c0, c0 + w.width)


def _write_geotiffs(
    layout: Layout,
    sp: Any,
    pid: int,
    w: Window,
    sar: np.ndarray,
    sar_valid: np.ndarray,
    opt: np.ndarray,
    opt_valid: np.ndarray,
) -> tuple[str, str]:
    """Float32 GeoTIFF patches with the original values and the SAR window's georeferencing (NaN = invalid)."""
    from saropt.io.images import write_geotiff

    sar_rel, opt_rel = layout.geotiff_relpaths(pid)
    transform = sp.sar.window_transform(w)
    crs = sp.sar.crs
    s = np.where(sar_valid[None], sar, np.nan).astype(np.float32)
    o = np.where(opt_valid[None], opt, np.nan).astype(np.float32)
    write_geotiff(layout.root / sar_rel, s, transform=transform, crs=crs, nodata=float("nan"))
    write_geotiff(layout.root / opt_rel, o, transform=transform, crs=crs, nodata=float("nan"))
    return sar_rel, opt_rel


def _plain(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    return v


def prepare_dirs(layout: Layout, plan: BuildPlan) -> None:
    """Create the patch folders and the work folder before the units run."""
    out = plan.config.outputs
    layout.units_dir.mkdir(parents=True, exist_ok=True)
    if out.png:
        dirs = layout.patch_dirs()
        if not out.write_rejected:
            dirs = dirs[:2]
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
    if out.geotiff:
        for sub in ("sar", "opt"):
            (layout.root / "geotiff" / sub).mkdir(parents=True, exist_ok=True)


def cleanup_tmp(layout: Layout) -> int:
    """Delete temporary files an interrupted build left in the patch and work folders; returns how many."""
    n = 0
    for d in [
        *layout.patch_dirs(),
        layout.units_dir,
        layout.root / "geotiff" / "sar",
        layout.root / "geotiff" / "opt",
    ]:
        if not d.is_dir():
            continue
        for p in d.iterdir():
            if p.name.startswith(".") and (".tmp" in p.name or p.name.endswith(".part")):
                p.unlink(missing_ok=True)
                n += 1
    return n


def env_threads() -> int:
    """OpenCV threads per worker process (``SAROPT_WORKER_THREADS``, default 1)."""
    try:
        return max(1, int(os.environ.get("SAROPT_WORKER_THREADS", "1")))
    except ValueError:
        return 1
