"""Shared preparation of a patch pair for the quality scores: block means, noise levels, a reduced copy.

All quality scores work on the same few derived arrays (block means at a scale where SAR speckle is averaged
down, half-block means for a noise estimate, a copy at about 128 px for the registration check and the
hashes). They are computed once per pair here, with invalid pixels excluded (block means) or filled with the
mean of the valid ones (reduced copy).

Convention:
    Arrays are ``(H, W)`` or ``(H, W, C)`` in the SAR patch's pixel grid (x = column, y = row, 0-based, pixel
    centres at integer coordinates). Block ``(i, j)`` of size ``k`` covers rows ``i*k .. i*k+k-1`` and columns
    ``j*k .. j*k+k-1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from saropt.errors import InputError

#: blocks with less than this valid fraction count as missing (NaN)
MIN_BLOCK_VALID = 0.5
#: quantile of the half-block differences used for the noise estimate (and the matching half-normal quantile)
NOISE_QUANTILE = 0.25
_HALF_NORMAL_Q = 0.3186393639643752  # scipy.stats.halfnorm.ppf(0.25)


@dataclass(frozen=True)
class PreparedPair:
    """A patch pair reduced to what the quality scores need.

    Attributes:
        valid_fraction: fraction of valid pixels.
        block: block size ``k`` (even) of the block statistics.
        sar_blocks: ``(H//k, W//k)`` SAR block means, NaN where a block is mostly invalid.
        opt_blocks: ``(H//k, W//k, C)`` optical block means (C = 1 or 3), NaN likewise.
        sar_noise: robust standard deviation of a SAR block mean due to noise (speckle), grey levels.
        grey_noise: the same for the optical brightness (mean of the channels).
        work_factor: reduction factor of the working-resolution copy (about 128 px along the shorter side).
        work_sar: ``(H/f, W/f)`` float32 SAR at working resolution, invalid pixels filled with the valid mean.
        work_grey: ``(H/f, W/f)`` float32 optical brightness at working resolution, filled likewise.
        work_valid: ``(H/f, W/f)`` float32 valid fraction of each working pixel.
    """

    valid_fraction: float
    block: int
    sar_blocks: np.ndarray
    opt_blocks: np.ndarray
    sar_noise: float
    grey_noise: float
    work_factor: int
    work_sar: np.ndarray
    work_grey: np.ndarray
    work_valid: np.ndarray


#: shorter side of the working-resolution copy (registration check, hashes)
WORK_SIZE = 128


def work_factor_for(height: int, width: int) -> int:
    """Integer reduction factor giving about ``WORK_SIZE`` px along the shorter side (2 for 256 px)."""
    return max(1, round(min(height, width) / WORK_SIZE))


def block_size_for(height: int, width: int) -> int:
    """Even block size giving about 32 blocks across the shorter side (8 for 256 px patches)."""
    return max(2, 2 * round(min(height, width) / 64.0))


def _means(num: np.ndarray, den: np.ndarray | None, size: tuple[int, int]) -> np.ndarray:
    """Area means over a ``size = (cols, rows)`` grid of a weight-premultiplied ``(H, W, C)`` stack ``num``
    with weights ``den`` (``None``: all weights 1); NaN where the mean weight is below ``MIN_BLOCK_VALID``."""
    out = cv2.resize(num, size, interpolation=cv2.INTER_AREA)
    if den is None:
        return out
    d = cv2.resize(den, size, interpolation=cv2.INTER_AREA)
    out = out / np.maximum(d, 1e-6)[..., None]
    out[d < MIN_BLOCK_VALID] = np.nan
    return out


def median(a: np.ndarray) -> float:
    """``np.median`` of a 1-D finite array (the same value), without its overhead on small arrays (the quality
    scores take thousands of medians of 16-1024 values per build unit)."""
    n = a.size
    h = n // 2
    if n % 2:
        return float(np.partition(a, h)[h])
    p = np.partition(a, (h - 1, h))
    return float(0.5 * (p[h - 1] + p[h]))


def _noise_from_halves(d: np.ndarray) -> float:
    """Robust noise std of a block mean from half-block differences ``d`` (NaN = missing).

    For noise alone the two halves of a block are independent means of ``k*k/2`` pixels each, so their
    difference has four times the variance of the full block mean. Taking halves of the same block (rather
    than neighbouring pixels) keeps the spatial correlation of speckle in the estimate. ``|d|`` of pure noise
    is half-normal with scale ``2 * sigma_block``; structure only makes ``|d|`` larger, so a low quantile (the
    most homogeneous blocks) estimates the noise with little contamination from structure.
    """
    d = np.abs(d[np.isfinite(d)])
    if d.size < 8:
        return float("nan")
    kth = int(NOISE_QUANTILE * (d.size - 1))
    return float(np.partition(d, kth)[kth]) / (_HALF_NORMAL_Q * 2.0)


def prepare_pair(sar: np.ndarray, opt: np.ndarray, valid: np.ndarray | None) -> PreparedPair:
    """Validate a patch pair and compute the shared arrays.

    Args:
        sar: ``(H, W)`` uint8 (or float) SAR patch.
        opt: ``(H, W, 3)`` or ``(H, W)`` uint8 (or float) optical patch warped onto the SAR grid.
        valid: ``(H, W)`` bool, True where both SAR and warped optical are valid; ``None`` = all valid.

    Returns:
        The prepared pair.

    Raises:
        InputError: for mismatched shapes, optical channel counts other than 1 or 3, or patches smaller
            than 16 px.
    """
    sar = np.asarray(sar)
    opt = np.asarray(opt)
    if sar.ndim == 3 and sar.shape[2] == 1:
        sar = sar[..., 0]
    if sar.ndim != 2:
        raise InputError(f"SAR patch must be (H, W), got shape {sar.shape}")
    h, w = sar.shape
    if h < 16 or w < 16:
        raise InputError(f"quality scores need patches of at least 16x16 pixels, got {w}x{h}")
    if opt.ndim == 2:
        opt = opt[..., None]
    if opt.ndim != 3 or opt.shape[:2] != (h, w) or opt.shape[2] not in (1, 3):
        raise InputError(
            f"optical patch must be ({h}, {w}) or ({h}, {w}, 3) like the SAR patch, got {opt.shape}"
        )
    if valid is None:
        mask = np.ones((h, w), dtype=bool)
    else:
        mask = np.asarray(valid, dtype=bool)
        if mask.shape != (h, w):
            raise InputError(f"valid mask must be ({h}, {w}) like the SAR patch, got {mask.shape}")
    n_opt = opt.shape[2]

    # One float32 stack (SAR, optical channels) so every block statistic is one OpenCV call.
    if sar.dtype == np.uint8 and opt.dtype == np.uint8:
        stack = cv2.merge([sar, opt]).astype(np.float32)
    else:
        stack = np.empty((h, w, 1 + n_opt), dtype=np.float32)
        stack[..., 0] = sar
        stack[..., 1:] = opt
    n_valid = int(np.count_nonzero(mask))
    all_valid = n_valid == h * w
    if not all_valid:
        stack[~mask] = stack[mask].mean(axis=0) if n_valid else 0.0

    k = block_size_for(h, w)
    nh, nw = h // k, w // k
    f = work_factor_for(h, w)
    if f > 1:
        size = (w // f, h // f)
        wc = stack[: (h // f) * f, : (w // f) * f]
        work = cv2.resize(wc, size, interpolation=cv2.INTER_AREA)
        if all_valid:
            work_valid = np.ones((h // f, w // f), np.float32)
        else:
            wmask = np.ascontiguousarray(mask[: (h // f) * f, : (w // f) * f], dtype=np.float32)
            work_valid = cv2.resize(wmask, size, interpolation=cv2.INTER_AREA)
    else:
        work, work_valid = stack, mask.astype(np.float32)

    if f > 1 and k % (2 * f) == 0:
        # Area means compose: the block statistics come from the working copy (f times fewer pixels each way),
        # equal to computing them at full resolution up to float32 rounding.
        kk = k // f
        if all_valid:
            num, den = work[: nh * kk, : nw * kk], None
        else:
            num = cv2.resize(wc * wmask[..., None], size, interpolation=cv2.INTER_AREA)[: nh * kk, : nw * kk]
            den = np.ascontiguousarray(work_valid[: nh * kk, : nw * kk])
    else:
        num = stack[: nh * k, : nw * k]
        den = None if all_valid else np.ascontiguousarray(mask[: nh * k, : nw * k], dtype=np.float32)
        if den is not None:
            num = num * den[..., None]
    blocks = _means(num, den, (nw, nh))
    # Half-block means: left/right halves (2*nw columns) and top/bottom halves (2*nh rows).
    lr = _means(num, den, (2 * nw, nh))
    tb = _means(num, den, (nw, 2 * nh))
    d_lr = lr[:, 0::2] - lr[:, 1::2]
    d_tb = tb[0::2] - tb[1::2]
    d_sar = np.concatenate([d_lr[..., 0].ravel(), d_tb[..., 0].ravel()])
    if n_opt == 1:
        d_grey = np.concatenate([d_lr[..., 1].ravel(), d_tb[..., 1].ravel()])
    else:
        # channel means written out: np.mean over a 3-long axis costs more than the arithmetic (same values)
        third = np.float32(3.0)
        d_grey = np.concatenate(
            [
                ((d_lr[..., 1] + d_lr[..., 2]) + d_lr[..., 3]).ravel() / third,
                ((d_tb[..., 1] + d_tb[..., 2]) + d_tb[..., 3]).ravel() / third,
            ]
        )

    work_grey = (
        work[..., 1] if n_opt == 1 else (work[..., 1] + work[..., 2] + work[..., 3]) * np.float32(1.0 / 3.0)
    )
    return PreparedPair(
        valid_fraction=n_valid / float(h * w),
        block=k,
        sar_blocks=np.ascontiguousarray(blocks[..., 0]),
        opt_blocks=np.ascontiguousarray(blocks[..., 1:]),
        sar_noise=_noise_from_halves(d_sar),
        grey_noise=_noise_from_halves(d_grey),
        work_factor=f,
        work_sar=np.ascontiguousarray(work[..., 0]),
        work_grey=np.ascontiguousarray(work_grey),
        work_valid=work_valid,
    )
