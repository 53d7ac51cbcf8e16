"""Per-patch quality scores and the flags and reasons derived from them (QXS-SAROPT step G).

:func:`patch_scores` computes every score of one patch pair (about 2-3 ms for 256 px on one core);
:func:`decide` turns scores into flags with a :class:`~saropt.quality.config.QualityConfig`. The near-duplicate
filter needs all patches at once and lives in :func:`saropt.quality.duplicates.find_near_duplicates`. Nothing is
deleted: a build keeps rejected patches in its index with their flags and reasons, so a dataset can be
re-filtered with other thresholds from its index alone.

Convention:
    Patches are ``(H, W)`` (SAR), ``(H, W, 3)`` or ``(H, W)`` (optical warped onto the SAR grid) and
    ``(H, W)`` (validity) arrays in the SAR patch's pixel grid (x = column, y = row, 0-based, pixel centres at
    integer coordinates).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from saropt.quality.config import FILTERS, QualityConfig
from saropt.quality.duplicates import phash, to_int64
from saropt.quality.prep import prepare_pair
from saropt.quality.regcheck import check_prepared
from saropt.quality.seamline import SeamContext, seamline_score
from saropt.quality.texture import texture_scores

__all__ = ["FILTERS", "SCORE_KEYS", "decide", "duplicate_reason", "patch_scores"]

#: keys of :func:`patch_scores`' result, in a stable order (index columns)
SCORE_KEYS = (
    "nodata_fraction",
    "texture_sar",
    "texture_opt",
    "texture",
    "seamline",
    "seamline_angle",
    "regcheck",
    "regcheck_dx",
    "regcheck_dy",
    "regcheck_shift_px",
    "regcheck_contrast",
    "phash_sar",
    "phash_opt",
)

_NAN = float("nan")


def patch_scores(
    sar: np.ndarray,
    opt: np.ndarray,
    valid: np.ndarray | None,
    cfg: QualityConfig | None = None,
    seam_context: SeamContext | None = None,
) -> dict[str, Any]:
    """All quality scores of one patch pair.

    Scores of filters not in ``cfg.enabled`` are not computed and are NaN (the hashes are always computed;
    the texture scores also when only ``regcheck`` is enabled, which uses them).

    Convention:
        All arrays share the SAR patch's pixel grid (x = column, y = row). ``regcheck_dx``/``regcheck_dy`` are
        SAR pixels with ``opt(x + dx, y + dy) ~ sar(x, y)``; ``seamline_angle`` is degrees counter-clockwise
        from the +x axis on screen.

    Args:
        sar: ``(H, W)`` uint8 SAR patch.
        opt: ``(H, W, 3)`` (RGB) or ``(H, W)`` uint8 optical patch warped onto the SAR grid.
        valid: ``(H, W)`` bool, True where both SAR and warped optical are valid; ``None`` = all valid.
        cfg: thresholds and enabled filters (defaults when ``None``).
        seam_context: block means of the area around the patch, placed at the patch
            (:func:`saropt.quality.seamline.seam_context`, then ``.at(origin)``): a seamline candidate must then
            run on beyond the patch. ``None`` judges the patch alone, which also flags straight field boundaries.

    Returns:
        A dict with the keys of :data:`SCORE_KEYS`:

        - ``nodata_fraction``: fraction of invalid pixels.
        - ``texture_sar``, ``texture_opt``: structure bits per modality; ``texture``: their maximum, the score
          the texture flag uses (a patch is texture-less only if both modalities are).
        - ``seamline``: unexplained optical straight-line step in grey levels; ``seamline_angle`` its direction.
        - ``regcheck``: registration-check margin in ``[-1, 1]`` (NaN without confidence or when texture-less);
          ``regcheck_dx``, ``regcheck_dy``, ``regcheck_shift_px``: where the SAR/optical similarity peaks;
          ``regcheck_contrast``: the similarity surface's contrast.
        - ``phash_sar``, ``phash_opt``: 64-bit perceptual hashes as signed int64 Python ints (two's
          complement; :func:`saropt.quality.duplicates.to_uint64` gives the unsigned value).

    Raises:
        InputError: for mismatched or unsupported shapes.
    """
    cfg = cfg or QualityConfig()
    enabled = set(cfg.enabled)
    pair = prepare_pair(sar, opt, valid)
    scores: dict[str, Any] = dict.fromkeys(SCORE_KEYS, _NAN)
    scores["nodata_fraction"] = 1.0 - pair.valid_fraction

    if enabled & {"texture", "regcheck"}:
        grey_blocks = (
            pair.opt_blocks.mean(axis=2) if pair.opt_blocks.shape[2] > 1 else pair.opt_blocks[..., 0]
        )
        t_sar, t_opt, t = texture_scores(
            pair.sar_blocks, pair.sar_noise, grey_blocks, pair.grey_noise, cfg.texture_step
        )
        if "texture" in enabled:
            scores.update(texture_sar=t_sar, texture_opt=t_opt, texture=t)
    else:
        t = _NAN

    if "seamline" in enabled:
        score, angle = seamline_score(pair.sar_blocks, pair.opt_blocks, pair.sar_noise, seam_context)
        scores.update(seamline=score, seamline_angle=angle)

    if "regcheck" in enabled:
        check = check_prepared(
            pair.work_sar, pair.work_grey, pair.work_valid, pair.work_factor, cfg.regcheck_max_shift
        )
        scores["regcheck_contrast"] = check.contrast
        # A texture-less patch gives no evidence either way: leave it to the texture filter.
        if not (math.isfinite(t) and t < cfg.texture_min):
            scores.update(
                regcheck=check.margin,
                regcheck_dx=check.dx,
                regcheck_dy=check.dy,
                regcheck_shift_px=check.shift,
            )

    # Hashes from the working-resolution copy: area reduction composes, so this equals hashing the patch.
    scores["phash_sar"] = to_int64(phash(pair.work_sar))
    scores["phash_opt"] = to_int64(phash(pair.work_grey))
    return scores


def _value(scores: dict[str, Any], key: str) -> float:
    """A score as a float; NaN when missing, None or not a finite number."""
    value = scores.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        return _NAN
    value = float(value)
    return value if math.isfinite(value) else _NAN


def decide(scores: dict[str, Any], cfg: QualityConfig | None = None) -> tuple[dict[str, bool], list[str]]:
    """Flags and human-readable reasons from one patch's scores.

    A NaN or missing score never raises a flag, and disabled filters are never flagged. The registration
    check flags when its margin is below ``regcheck_min``, its peak at least ``regcheck_min_shift`` px from
    zero and its surface contrast at least ``regcheck_min_contrast``. The duplicate flag is
    not decided here (it needs all patches: :func:`saropt.quality.duplicates.find_near_duplicates`).

    Args:
        scores: a :func:`patch_scores` result (or an index row with those keys).
        cfg: thresholds and enabled filters (defaults when ``None``).

    Returns:
        ``(flags, reasons)``: flags ``{"nodata", "texture", "seamline", "regcheck"}`` (True = problem) and one
        reason per raised flag, e.g. ``"nodata 12.3% > 1.0%"``.
    """
    cfg = cfg or QualityConfig()
    enabled = set(cfg.enabled)
    flags = {"nodata": False, "texture": False, "seamline": False, "regcheck": False}
    reasons: list[str] = []

    nodata = _value(scores, "nodata_fraction")
    if "nodata" in enabled and nodata > cfg.nodata_max:
        flags["nodata"] = True
        reasons.append(f"nodata {100 * nodata:.1f}% > {100 * cfg.nodata_max:.1f}%")

    texture = _value(scores, "texture")
    if "texture" in enabled and texture < cfg.texture_min:
        flags["texture"] = True
        parts = [
            (name, _value(scores, key)) for name, key in (("SAR", "texture_sar"), ("optical", "texture_opt"))
        ]
        detail = ", ".join(f"{name} {value:.1f}" for name, value in parts if math.isfinite(value))
        reasons.append(f"texture-less (structure {texture:.1f} bits < {cfg.texture_min:.1f}: {detail})")

    seam = _value(scores, "seamline")
    if "seamline" in enabled and seam > cfg.seamline_max:
        flags["seamline"] = True
        angle = _value(scores, "seamline_angle")
        where = f" along a line at {angle:.0f} deg" if math.isfinite(angle) else ""
        reasons.append(
            f"seamline (optical step {seam:.1f} > {cfg.seamline_max:.1f} grey levels{where}, not in the SAR)"
        )

    margin = _value(scores, "regcheck")
    shift = _value(scores, "regcheck_shift_px")
    contrast = _value(scores, "regcheck_contrast")
    # Evidence of misregistration: a shifted position beats zero shift (margin), the peak is clearly away from
    # zero (shift) and the similarity surface is distinct enough to trust its peak (contrast). Missing shift
    # or contrast (an index written before these settings) does not block the flag.
    confident = not (shift < cfg.regcheck_min_shift) and not (contrast < cfg.regcheck_min_contrast)
    if "regcheck" in enabled and margin < cfg.regcheck_min and confident:
        flags["regcheck"] = True
        dx, dy = _value(scores, "regcheck_dx"), _value(scores, "regcheck_dy")
        peak = f"match peaks at dx {dx:+.1f}, dy {dy:+.1f} px; " if math.isfinite(dx + dy) else ""
        reasons.append(f"misregistered ({peak}margin {margin:.2f} < {cfg.regcheck_min:.2f})")
    return flags, reasons


def duplicate_reason(original: int, distance: int | None = None) -> str:
    """Reason text for a near-duplicate of patch ``original`` (its position in the duplicate search order)."""
    extra = f", {distance} bits apart" if distance is not None else ""
    return f"near-duplicate of patch {original}{extra}"
