"""Calibrate the seamline filter on a build's own scenes: ``saropt calibrate``.

Runs :func:`saropt.quality.seam_trials.seam_trials` on every scene pair of a build plan, read as a build reads
it, and tabulates false alarms and injected-seam detection per ``quality.seamline_max``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from saropt.dataset.plan import BuildPlan
from saropt.dataset.units import read_scene
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
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Seam trials on every scene pair of a build plan, pooled: what ``saropt calibrate`` prints.

    Each scene pair is read as a build reads it (its central ``max_side`` px window; the registration of its
    first sub-region), and :func:`seam_trials` runs on it with the plan's patch size.

    Returns:
        A JSON-ready dict: ``patch_size``, ``stride``, ``offsets``, ``trials``, ``scenes`` (scene ids),
        ``clean_patches``, ``seam_patches`` (offset -> count), ``thresholds``: one entry per threshold of
        :data:`THRESHOLDS` with ``false_alarm`` and ``detection`` (offset -> rate), ``roc_auc`` (offset ->
        area), and ``suggested``: the smallest threshold whose false-alarm rate is at most 1% (``None`` when
        none is). Rates and areas are ``None`` where no patch was crossed by a seam.

    Raises:
        InputError: a scene smaller than one patch, or no patch with enough valid data.
    """
    patch = int(plan.config.patch_size)
    stride = stride or patch // 4
    pooled = SeamTrials()
    ids = [sp.spec.id for sp in plan.scenes]
    for i in range(len(ids)):
        a = read_scene(plan, i, max_side)
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
        if progress:
            progress(i + 1, len(ids))
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
    return {
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
    }


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
    if res["suggested"] is None:
        lines.append("no threshold keeps false alarms at or below 1%: raise quality.seamline_max")
    else:
        lines.append(
            f"smallest threshold with at most 1% false alarms: --set quality.seamline_max={res['suggested']:g}"
        )
    return "\n".join(lines)
