"""``summary.json`` of a dataset, ``saropt inspect``'s view of it, and the human-readable summary text.

The summary is deterministic (no timestamps or timings), so identical builds write identical files.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saropt.dataset.layout import DATASET_FORMAT, INDEX_NAME, SUMMARY_NAME
from saropt.errors import DatasetNotFoundError

if TYPE_CHECKING:  # pragma: no cover
    from saropt.dataset.layout import Layout
    from saropt.dataset.plan import BuildPlan

SPLIT_NAMES = ("train", "val", "test", "buffer")


def overlap_note(patch_size: int, stride: int) -> str:
    """One sentence on the grid's overlap and QXS-SAROPT's inconsistent "stride 52 / 20% overlap"."""
    ov = 1.0 - stride / patch_size
    return (
        f"patch {patch_size} px, stride {stride} px = {100 * ov:.1f}% overlap "
        f"(QXS-SAROPT's 'stride 52 for 20% overlap' is inconsistent: at 256 px stride 52 is 79.7% overlap and "
        f"20% overlap is stride 205)"
    )


def make_summary(
    plan: BuildPlan, layout: Layout, rows: Sequence[dict[str, Any]], flag_names: Sequence[str]
) -> dict[str, Any]:
    """The ``summary.json`` mapping of a finished build.

    Args:
        plan: the build plan.
        layout: the output layout.
        rows: the index rows (see :mod:`saropt.dataset.index`).
        flag_names: the filter flags (without prefix).
    """
    from saropt import __version__
    from saropt.dataset.plan import registration_method

    cfg = plan.config
    kept = sum(1 for r in rows if r["keep"])
    by_reason = {f: sum(1 for r in rows if r.get(f"flag_{f}")) for f in flag_names}
    splits = Counter(r["split"] for r in rows if r["keep"])
    scenes = []
    rmse: dict[str, float | None] = {}
    for sp in plan.scenes:
        regions = []
        for rp in sp.regions:
            reg = rp.registration
            ids = range(rp.first_patch_id, rp.first_patch_id + len(rp.windows))
            n_kept = sum(1 for i in ids if rows[i]["keep"]) if rows else 0
            key = sp.spec.id if len(sp.regions) == 1 and rp.name == "full" else f"{sp.spec.id}/{rp.name}"
            r_rmse = _f(reg.rmse_px)
            rmse[key] = r_rmse
            regions.append(
                {
                    "name": rp.name,
                    "method": registration_method(reg),
                    "model": rows[rp.first_patch_id]["transform_model"] if rp.windows else str(reg.model),
                    "tiepoints": 0 if reg.tiepoints is None else len(reg.tiepoints),
                    "inliers": None if reg.inliers is None else int(sum(bool(x) for x in reg.inliers)),
                    "rmse_px": r_rmse,
                    "loo_rmse_px": _f(reg.loo_rmse_px),
                    "overlap_window": rp.footprint.to_dict(),
                    "patches": len(rp.windows),
                    "kept": n_kept,
                }
            )
        scenes.append(
            {
                "id": sp.spec.id,
                "sar": sp.spec.sar,
                "optical": sp.spec.optical,
                "sar_size": [sp.sar.width, sp.sar.height],
                "optical_size": [sp.opt.width, sp.opt.height],
                "georeferenced": bool(sp.sar.georeferenced and sp.opt.georeferenced),
                "regions": regions,
            }
        )
    return {
        "format": DATASET_FORMAT,
        "saropt_version": __version__,
        "config_hash": plan.config_hash,
        "patch_size": cfg.patch_size,
        "stride": plan.stride,
        "overlap": round(plan.overlap, 6),
        "overlap_note": overlap_note(cfg.patch_size, plan.stride),
        "layout": {"sar": layout.sar_dir, "opt": layout.opt_dir},
        "pairs_total": len(rows),
        "kept": kept,
        "rejected": len(rows) - kept,
        "rejected_by_reason": by_reason,
        "splits": {s: int(splits.get(s, 0)) for s in SPLIT_NAMES},
        "split_method": cfg.split.method,
        "registration_rmse_px": rmse,
        "scenes": scenes,
    }


def _f(v: Any) -> float | None:
    if v is None:
        return None
    x = float(v)
    return round(x, 6) if math.isfinite(x) else None


def load_summary(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``summary.json`` of a complete saropt dataset.

    Raises:
        DatasetNotFoundError: the folder is missing or is not a complete saropt dataset.
    """
    p = Path(root)
    if not p.is_dir():
        raise DatasetNotFoundError(f"dataset folder not found: {p}")
    s = p / SUMMARY_NAME
    data: dict[str, Any] = {}
    if s.is_file():
        try:
            data = json.loads(s.read_text())
        except (OSError, ValueError):
            data = {}
    if data.get("format") != DATASET_FORMAT and (p / ".saropt" / "state.json").is_file():
        raise DatasetNotFoundError(
            f"{p} is an unfinished saropt build; run the same saropt build again to resume it"
        )
    if data.get("format") != DATASET_FORMAT:
        raise DatasetNotFoundError(
            f"{p} is not a saropt dataset (no summary.json written by saropt build); build one with saropt build"
        )
    if not (p / INDEX_NAME).is_file():
        raise DatasetNotFoundError(
            f"{p} is an unfinished saropt build (no index.parquet yet); run the same saropt build again to resume"
        )
    return data


def inspect_dataset(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The summary ``saropt inspect`` prints, recomputed from ``index.parquet`` where it can be.

    Returns:
        A mapping with ``pairs_total``, ``kept``, ``rejected``, ``rejected_by_reason`` (filter -> count; a pair
        flagged by two filters counts in both), ``splits`` (split -> kept pairs), ``registration_rmse_px``
        (``scene`` or ``scene/subregion`` -> RMSE in SAR pixels), ``patch_size``, ``stride``, ``overlap``,
        ``layout``, ``scenes`` and ``root``.

    Raises:
        DatasetNotFoundError: not a complete saropt dataset.
    """
    from saropt.dataset.index import FLAG_PREFIX, read_index

    summary = load_summary(root)
    df = read_index(root)
    flags = [c for c in df.columns if c.startswith(FLAG_PREFIX)]
    kept = int(df["keep"].sum()) if len(df) else 0
    splits = Counter(df.loc[df["keep"], "split"]) if len(df) else Counter()
    return {
        "root": str(Path(root)),
        "pairs_total": len(df),
        "kept": kept,
        "rejected": len(df) - kept,
        "rejected_by_reason": {c[len(FLAG_PREFIX) :]: int(df[c].sum()) for c in flags},
        "splits": {s: int(splits.get(s, 0)) for s in SPLIT_NAMES},
        "registration_rmse_px": summary.get("registration_rmse_px", {}),
        "patch_size": summary.get("patch_size"),
        "stride": summary.get("stride"),
        "overlap": summary.get("overlap"),
        "overlap_note": summary.get("overlap_note"),
        "layout": summary.get("layout"),
        "split_method": summary.get("split_method"),
        "scenes": summary.get("scenes", []),
        "overviews": summary.get("overviews", []),
    }


def format_summary(s: dict[str, Any]) -> str:
    """Human-readable text of a summary (from :func:`make_summary` or :func:`inspect_dataset`)."""
    total = s["pairs_total"]
    kept = s["kept"]
    lines = []
    if s.get("root"):
        lines.append(f"dataset       {s['root']}")
    lay = s.get("layout") or {}
    lines.append(f"grid          {s.get('overlap_note', '')}")
    if lay:
        lines.append(f"layout        {lay.get('sar')}/<n>.png, {lay.get('opt')}/<n>.png")
    pct = 100.0 * kept / total if total else 0.0
    lines.append(f"pairs         {total} total, {kept} kept ({pct:.1f}%), {total - kept} rejected")
    reasons = s.get("rejected_by_reason", {})
    if reasons:
        lines.append("rejected by   " + ", ".join(f"{k} {v}" for k, v in reasons.items()))
    sp = s.get("splits", {})
    lines.append(
        "splits        "
        + ", ".join(f"{k} {sp.get(k, 0)}" for k in SPLIT_NAMES)
        + (f" (method {s['split_method']})" if s.get("split_method") else "")
    )
    for sc in s.get("scenes", []):
        for r in sc.get("regions", []):
            name = sc["id"] if r["name"] == "full" else f"{sc['id']}/{r['name']}"
            rmse = r.get("rmse_px")
            loo = r.get("loo_rmse_px")
            if r["method"] == "identity":
                detail = "identity (pre-aligned pair)"
            else:
                detail = (
                    f"{r['method']} {r['model']}, {r['tiepoints']} tie points"
                    + (
                        f" ({r['inliers']} inliers)"
                        if r.get("inliers") is not None and r["tiepoints"]
                        else ""
                    )
                    + (f", RMSE {rmse:.3f} px" if rmse is not None else "")
                    + (f", LOO RMSE {loo:.3f} px" if loo is not None else "")
                )
            lines.append(f"registration  {name}: {detail}; {r['patches']} patches, {r['kept']} kept")
    root = s.get("root")
    for ov in s.get("overviews", []) or []:
        lines.append(f"overview      {os.path.join(root, ov) if root else ov}")
    return "\n".join(lines)
