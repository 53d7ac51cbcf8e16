"""Finalise a build: near-duplicates across units, keep, splits, build.yaml, summary.json, overviews, the index.

Everything here is a deterministic function of the unit records and the plan, and it is idempotent: an
interrupted finalisation simply runs again (near-duplicates already moved to ``rejected/`` stay there).
``index.parquet`` is written last.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from saropt.dataset.config import config_to_yaml
from saropt.dataset.layout import Layout
from saropt.dataset.plan import BuildPlan, registration_method
from saropt.dataset.units import read_unit_record

logger = logging.getLogger(__name__)

DUPLICATE_FLAG = "duplicate"


def load_records(plan: BuildPlan, layout: Layout) -> list[dict[str, Any]]:
    """Every patch record of the plan's units, sorted by patch number, with scene/region indices added."""
    recs: list[dict[str, Any]] = []
    for unit in plan.units:
        data = read_unit_record(layout, unit.uid)
        for p in data["patches"]:
            p["_scene"] = unit.scene
            p["_region"] = unit.region
            recs.append(p)
    recs.sort(key=lambda r: r["patch_id"])
    return recs


def finalise(plan: BuildPlan, layout: Layout) -> dict[str, Any]:
    """Turn the unit records into the final dataset files; returns the summary (``summary.json``).

    Args:
        plan: the build plan.
        layout: the output layout.

    Returns:
        The summary mapping written to ``summary.json``.
    """
    from saropt.dataset.index import write_index
    from saropt.dataset.summary import make_summary
    from saropt.io.windows import Window
    from saropt.quality.config import QualityConfig

    cfg = plan.config
    qcfg = QualityConfig.from_dict(dict(cfg.quality))
    recs = load_records(plan, layout)
    windows = [Window(*r["window"]) for r in recs]
    groups = [plan.scenes[r["_scene"]].spec.id for r in recs]

    _near_duplicates(recs, windows, groups, qcfg, layout, plan)

    keep = [bool(r["kept"]) for r in recs]
    splits = _splits(plan, groups, windows, keep)
    for r, s in zip(recs, splits):
        r["split"] = s

    score_names, flag_names = _score_and_flag_names(recs, qcfg)
    rows = [_row(plan, r, flag_names) for r in recs]

    summary = make_summary(plan, layout, rows, flag_names)
    from saropt.dataset.overview import write_overviews

    summary["overviews"] = write_overviews(plan, layout, rows)

    from saropt.io.images import atomic_path

    with atomic_path(layout.config) as tmp:
        Path(tmp).write_text(config_to_yaml(cfg, {"resolved": resolved_section(plan)}))
    with atomic_path(layout.summary) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2, allow_nan=False, default=_json_default) + "\n")
    write_index(layout.index, rows, score_names, flag_names)
    logger.info(
        "finalised: %d pairs, %d kept, %d rejected; index %s",
        len(rows),
        summary["kept"],
        summary["rejected"],
        layout.index,
    )
    return summary


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _near_duplicates(
    recs: list[dict[str, Any]],
    windows: list[Any],
    groups: list[str],
    qcfg: Any,
    layout: Layout,
    plan: BuildPlan,
) -> None:
    """Flag near-duplicates among the pairs the units kept, in patch-number order; move their files.

    Overlapping windows of one scene are never each other's duplicates (they are neighbours, handled by the
    splits); the earliest kept patch is the reference.
    """
    from saropt.quality.duplicates import find_near_duplicates

    for r in recs:
        r["flags"].setdefault(DUPLICATE_FLAG, False)
        r["duplicate_of"] = None
    if DUPLICATE_FLAG not in qcfg.enabled or not recs:
        return
    hashes = [(int(r["scores"]["phash_sar"]), int(r["scores"]["phash_opt"])) for r in recs]
    dup = find_near_duplicates(
        hashes,
        groups,
        windows,
        qcfg.duplicate_max_hamming,
        keep=[bool(r["kept"]) for r in recs],
    )
    n = 0
    for r, d in zip(recs, dup):
        if d is None:
            continue
        from saropt.quality import duplicate_reason  # (imports the scorers: only when there is a duplicate)

        orig = int(recs[int(d)]["patch_id"])
        r["flags"][DUPLICATE_FLAG] = True
        r["duplicate_of"] = orig
        r["reasons"].append(duplicate_reason(orig))
        r["kept"] = False
        _move_to_rejected(r, layout, plan)
        n += 1
    if n:
        logger.info("near-duplicate filter: %d pairs rejected", n)


def _move_to_rejected(r: dict[str, Any], layout: Layout, plan: BuildPlan) -> None:
    root = layout.root
    write = plan.config.outputs.write_rejected
    for key in ("sar_path", "opt_path"):
        rel = r.get(key)
        if rel is None:
            continue
        new_rel = rel if rel.startswith("rejected/") else f"rejected/{rel}"
        src, dst = root / rel, root / new_rel
        if write:
            if src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
            r[key] = new_rel
        else:
            if src.is_file():
                src.unlink()
            r[key] = None


def _splits(plan: BuildPlan, groups: list[str], windows: list[Any], keep: list[bool]) -> list[str]:
    from saropt.dataset.splits import assign_splits

    sc = plan.config.split
    if not any(keep):
        return ["" for _ in keep]
    return list(
        assign_splits(
            groups,
            windows,
            keep,
            method=sc.method,
            fractions=sc.fractions,
            block_size=sc.block_size,
            seed=sc.seed,
            scene_splits=dict(sc.scenes) or None,
        )
    )


def _score_and_flag_names(recs: list[dict[str, Any]], qcfg: Any) -> tuple[list[str], list[str]]:
    from saropt.quality.config import FILTERS

    if recs:
        score_names = list(recs[0]["scores"].keys())
        flag_names = list(recs[0]["flags"].keys())
    else:
        score_names, flag_names = [], list(FILTERS)
    # Flags in the filters' documented order, then any others.
    ordered = [f for f in FILTERS if f in flag_names] + [f for f in flag_names if f not in FILTERS]
    return score_names, ordered


def _row(plan: BuildPlan, r: dict[str, Any], flag_names: list[str]) -> dict[str, Any]:
    from saropt.io.windows import Window

    sp = plan.scenes[r["_scene"]]
    rp = sp.regions[r["_region"]]
    reg = rp.registration
    w = Window(*r["window"])
    bounds = sp.sar.window_bounds(w) if sp.sar.georeferenced else None
    row: dict[str, Any] = {
        "patch_id": r["patch_id"],
        "sar_path": r.get("sar_path"),
        "opt_path": r.get("opt_path"),
        "sar_tif": r.get("sar_tif"),
        "opt_tif": r.get("opt_tif"),
        "scene_id": sp.spec.id,
        "subregion": rp.name,
        "col_off": w.col_off,
        "row_off": w.row_off,
        "width": w.width,
        "height": w.height,
        "minx": None if bounds is None else bounds[0],
        "miny": None if bounds is None else bounds[1],
        "maxx": None if bounds is None else bounds[2],
        "maxy": None if bounds is None else bounds[3],
        "crs": sp.sar.crs if sp.sar.georeferenced else None,
        "transform_model": _model_name(reg),
        "registration_method": registration_method(reg),
        "registration_rmse_px": _finite_or_none(reg.rmse_px),
        "registration_loo_rmse_px": _finite_or_none(reg.loo_rmse_px),
        "duplicate_of": r.get("duplicate_of"),
        "reject_reasons": "; ".join(r["reasons"]) if not r["kept"] else "",
        "keep": bool(r["kept"]),
        "split": r.get("split", "") if r["kept"] else "",
    }
    for k, v in r["scores"].items():
        row[k] = v
    for f in flag_names:
        row[f"flag_{f}"] = bool(r["flags"].get(f, False))
    return row


def _model_name(reg: Any) -> str:
    m = getattr(reg, "model", None)
    if isinstance(m, str):
        return m
    return str(getattr(reg.transform, "name", m))


def _finite_or_none(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return f if np.isfinite(f) else None


def resolved_section(plan: BuildPlan) -> dict[str, Any]:
    """The ``resolved`` section of ``build.yaml``: mappings, registrations and grids as actually used."""
    scenes = []
    for sp in plan.scenes:
        regions = []
        for rp in sp.regions:
            reg = rp.registration
            t = reg.transform
            regions.append(
                {
                    "name": rp.name,
                    "subregion": rp.subregion.to_dict(),
                    "registration": {
                        "method": registration_method(reg),
                        "model": _model_name(reg),
                        "tiepoints": 0 if reg.tiepoints is None else len(reg.tiepoints),
                        "inliers": None if reg.inliers is None else int(np.asarray(reg.inliers).sum()),
                        "rmse_px": _finite_or_none(reg.rmse_px),
                        "loo_rmse_px": _finite_or_none(reg.loo_rmse_px),
                        "transform": t.to_dict(),
                    },
                    "footprint": rp.footprint.to_dict(),
                    "patches": len(rp.windows),
                    "first_patch_id": rp.first_patch_id,
                }
            )
        scenes.append(
            {
                "id": sp.spec.id,
                "sar": {
                    "size": [sp.sar.width, sp.sar.height],
                    "dtype": sp.sar.dtype,
                    "bands": list(sp.sar.bands),
                },
                "optical": {
                    "size": [sp.opt.width, sp.opt.height],
                    "dtype": sp.opt.dtype,
                    "bands": list(sp.opt.bands),
                },
                "sar_mapping": sp.sar_mapping.to_dict(),
                "optical_mapping": sp.opt_mapping.to_dict(),
                "regions": regions,
            }
        )
    return {
        "config_hash": plan.config_hash,
        "stride": plan.stride,
        "overlap": plan.overlap,
        "unit_size": plan.unit_size,
        "scenes": scenes,
    }
