"""Calibrate the seamline filter on a build's own scenes: ``saropt calibrate``.

Runs :func:`saropt.quality.seam_trials.seam_trials` on every sub-region of a build plan, read as a build reads
it, and tabulates false alarms and injected-seam detection per ``quality.seamline_max``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from saropt.dataset.plan import BuildPlan
from saropt.dataset.units import read_region
from saropt.errors import InputError
from saropt.quality.seam_trials import SeamTrials, seam_trials

#: thresholds ``calibrate`` reports (``seamline_max``; 25 is the default)
THRESHOLDS = (15.0, 20.0, 25.0, 30.0, 35.0)


def calibrate(
    plan: BuildPlan,
    *,
    offsets: Sequence[float] = (40.0, 60.0),
    trials: int = 3,
    stride: int | None = None,
    max_side: int = 4096,
    seed: int = 0,
    examples: int = 12,
    png: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Seam trials on every scene pair of a build plan, pooled: what ``saropt calibrate`` prints.

    Each sub-region of each scene pair is read as a build reads it (its overlap with the optical image, the
    central ``max_side`` px of it; its own registration), and :func:`seam_trials` runs on it with the plan's
    patch size.

    The "clean" patches are the scenes as given: where a scene holds real seamlines, some of its false alarms
    are real detections. ``examples`` lists the highest-scoring clean patches, and ``png`` draws them (SAR,
    optical, checkerboard) so that you can tell which they are.

    Returns:
        A JSON-ready dict: ``patch_size``, ``stride``, ``offsets``, ``trials``, ``scenes`` (scene ids, ``scene/region`` for scenes with sub-regions),
        ``clean_patches``, ``seam_patches`` (offset -> count), ``thresholds``: one entry per threshold of
        :data:`THRESHOLDS` with ``false_alarm`` and ``detection`` (offset -> rate), ``roc_auc`` (offset ->
        area), ``suggested``: the smallest threshold whose false-alarm rate is at most 1% (``None`` when
        none is), and ``examples``: the highest-scoring clean patches (``scene``, ``x``, ``y`` of the top-left
        pixel in SAR scene pixels, ``score``, ``angle``), plus ``png`` when one was written. Rates and
        areas are ``None`` where no patch was crossed by a seam.

    Raises:
        InputError: a scene smaller than one patch, or no patch with enough valid data.
    """
    patch = int(plan.config.patch_size)
    stride = stride or patch // 4
    pooled = SeamTrials()
    regions = list(dict.fromkeys((u.scene, u.region) for u in plan.units))
    ids = []
    top: list[tuple[float, str, int, int, float, np.ndarray, np.ndarray]] = []
    for i, (si, ri) in enumerate(regions):
        sp = plan.scenes[si]
        name = sp.spec.id if len(sp.regions) == 1 else f"{sp.spec.id}/{sp.regions[ri].name}"
        ids.append(name)
        window, a = read_region(plan, si, ri, max_side)
        n_before = pooled.clean.size
        pooled.extend(
            seam_trials(
                a.sar_u8,
                a.opt_u8,
                a.valid,
                patch=patch,
                stride=stride,
                offsets=offsets,
                trials=trials,
                seed=seed + i,
            )
        )
        # this region's strongest clean patches, cut now while its arrays are at hand
        sc = np.nan_to_num(pooled.clean[n_before:], nan=-1.0)
        for k in np.argsort(-sc, kind="stable")[:examples]:
            if sc[k] > 0:
                x, y = (int(v) for v in pooled.clean_xy[n_before + k])
                sl = (slice(y, y + patch), slice(x, x + patch))
                angle = float(pooled.clean_angle[n_before + k])
                sx, sy = x + window.col_off, y + window.row_off  # SAR scene pixels
                top.append((float(sc[k]), name, sx, sy, angle, a.sar_u8[sl].copy(), a.opt_u8[sl].copy()))
        top = sorted(top, key=lambda e: -e[0])[:examples]
        if progress:
            progress(i + 1, len(regions))
    if not np.isfinite(pooled.clean).any():
        raise InputError("no patch has enough valid data (90%) to calibrate the seamline filter on")
    offs = [float(abs(o)) for o in offsets]
    table = [
        {
            "seamline_max": t,
            "false_alarm": pooled.false_alarm(t),
            "detection": {f"{o:g}": _num(pooled.detection(o, t)) for o in offs},
        }
        for t in THRESHOLDS
    ]
    ok = [row["seamline_max"] for row in table if row["false_alarm"] <= 0.01]
    res: dict[str, Any] = {
        "patch_size": patch,
        "stride": stride,
        "offsets": offs,
        "trials": trials,
        "scenes": ids,
        "clean_patches": int(np.isfinite(pooled.clean).sum()),
        "seam_patches": {f"{o:g}": int(np.isfinite(pooled.seam.get(o, np.zeros(0))).sum()) for o in offs},
        "thresholds": table,
        "roc_auc": {f"{o:g}": _num(pooled.auc(o)) for o in offs},
        "suggested": min(ok) if ok else None,
        "examples": [
            {"scene": sid, "x": x, "y": y, "score": round(sc_, 2), "angle": _num(ang)}
            for sc_, sid, x, y, ang, _, _ in top
        ],
    }
    if png is not None and top:
        from saropt.viz.overview import patch_mosaic, save_png

        labels = [
            f"{sc_:.1f}" + (f" @ {ang:.0f} deg" if np.isfinite(ang) else "") + f", ({x},{y}) of {sid}"
            for sc_, sid, x, y, ang, _, _ in top
        ]
        save_png(png, patch_mosaic([(s_, o_) for *_, s_, o_ in top], labels, ncols=3))
        res["png"] = str(png)
    return res


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _pct(x: float | None, width: int) -> str:
    return f"{x:>{width}.1%}" if x is not None else f"{'-':>{width}}"


def format_calibration(res: dict[str, Any]) -> str:
    """The text table of :func:`calibrate`'s result."""
    offs = [f"{o:g}" for o in res["offsets"]]
    lines = [
        f"seamline filter on {len(res['scenes'])} scene pair(s): {res['clean_patches']} patches of "
        f"{res['patch_size']} px at stride {res['stride']}, {res['trials']} injected seam(s) per scene and offset",
        "",
        "seamline_max  false alarms  " + "  ".join(f"{'detected +-' + o:>14}" for o in offs),
    ]
    for row in res["thresholds"]:
        det = "  ".join(_pct(row["detection"][o], 14) for o in offs)
        mark = "  (default)" if row["seamline_max"] == 25.0 else ""
        lines.append(f"{row['seamline_max']:>12g}  {row['false_alarm']:>12.1%}  {det}{mark}")
    auc = res["roc_auc"]
    lines.append(
        "ROC area: " + ", ".join(f"+-{o}: " + ("-" if auc[o] is None else f"{auc[o]:.3f}") for o in offs)
    )
    lines.append("patches crossed by a seam: " + ", ".join(f"+-{o}: {res['seam_patches'][o]}" for o in offs))
    if res["examples"]:
        best = res["examples"][0]
        where = f"; pictured in {res['png']}" if res.get("png") else " (--png draws them)"
        lines.append(
            f"highest-scoring clean patch: {best['scene']} at ({best['x']}, {best['y']}), {best['score']:.1f}"
            f"{where}: a real seam or a boundary the SAR does not show?"
        )
    if res["suggested"] is None:
        lines.append("no threshold keeps false alarms at or below 1%: raise quality.seamline_max")
    else:
        lines.append(
            f"smallest threshold with at most 1% false alarms: --set quality.seamline_max={res['suggested']:g}"
        )
    return "\n".join(lines)
