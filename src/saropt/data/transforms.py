"""Sample transforms: SAR radiometry, percentile stretch, normalisation, paired geometry, known shifts.

Functions work on tensors (radiometry) or sample dicts (geometry); each has a module twin (``nn.Module``,
kornia-style) to compose with ``torch.nn.Sequential``. Geometric ops act on every spatial tensor of the sample
(``sar``, ``opt``, ``lc``...; anything with >= 2 dims except ``meta``/``label``) over its last two dims, with
the same parameters, so SAR and optical stay aligned; they also work on batched ``(B, C, H, W)`` samples (one
draw per call). Random modules take an optional ``torch.Generator`` and record what they drew in ``meta``
(``hflip``, ``vflip``, ``rot90``, ``shift``) so that every sample of a batch has the same meta keys.

Convention:
    x = column, y = row, 0-based, pixel centres at integer coordinates. Crops update ``meta["window"]``
    (``col_off``, ``row_off`` advance by the crop's left/top). :func:`misalign` sets ``meta["shift"] = (dx,
    dy)``:
    the transform that maps OPTICAL pixels to SAR pixels is the translation ``x_sar = x_opt + dx``,
    ``y_sar = y_opt + dy`` (a ground feature at SAR pixel (x, y) appears at optical pixel (x - dx, y - dy)).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from saropt.errors import InputError

Sample = dict[str, Any]
_NON_SPATIAL = ("meta", "label")

# ------------------------------------------------------------------------------------------------------------
# Radiometry (tensor functions)
# ------------------------------------------------------------------------------------------------------------


def amplitude_to_intensity(x: Tensor) -> Tensor:
    """Amplitude to intensity (power): ``x ** 2``."""
    return x * x


def intensity_to_amplitude(x: Tensor) -> Tensor:
    """Intensity to amplitude: ``sqrt(max(x, 0))``."""
    return torch.sqrt(torch.clamp(x, min=0))


def intensity_to_db(x: Tensor, eps: float = 1e-10) -> Tensor:
    """Intensity to decibels: ``10 log10(max(x, eps))``."""
    return 10.0 * torch.log10(torch.clamp(x, min=eps))


def amplitude_to_db(x: Tensor, eps: float = 1e-10) -> Tensor:
    """Amplitude to decibels: ``20 log10(max(x, eps))`` (= intensity in dB)."""
    return 20.0 * torch.log10(torch.clamp(x, min=math.sqrt(eps)))


def db_to_intensity(x: Tensor) -> Tensor:
    """Decibels to intensity: ``10 ** (x / 10)``."""
    return torch.pow(10.0, x / 10.0)


def db_to_amplitude(x: Tensor) -> Tensor:
    """Decibels to amplitude: ``10 ** (x / 20)``."""
    return torch.pow(10.0, x / 20.0)


def _percentiles(x: Tensor, low: float, high: float, per_channel: bool) -> tuple[Tensor, Tensor]:
    if not 0.0 <= low < high <= 100.0:
        raise InputError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
    q = torch.tensor([low / 100.0, high / 100.0], dtype=torch.float32, device=x.device)
    xf = x.float()
    if per_channel and xf.dim() >= 3:
        flat = xf.reshape(*xf.shape[:-2], -1)
        if flat.shape[-1] > 1 << 20:  # quantile's size limit and cost: subsample regularly
            flat = flat[..., :: flat.shape[-1] // (1 << 20) + 1]
        lo_hi = torch.nanquantile(flat, q, dim=-1)  # (2, ..., C)
        return lo_hi[0][..., None, None], lo_hi[1][..., None, None]
    flat = xf.reshape(-1)
    if flat.numel() > 1 << 20:
        flat = flat[:: flat.numel() // (1 << 20) + 1]
    lo_hi = torch.nanquantile(flat, q)
    return lo_hi[0], lo_hi[1]


def percentile_clip(x: Tensor, low: float = 1.0, high: float = 99.5, per_channel: bool = True) -> Tensor:
    """Clip values to their ``low``/``high`` percentiles (NaN ignored), per channel by default.

    Args:
        x: ``(C, H, W)`` or ``(B, C, H, W)`` tensor (per-channel percentiles over H, W; ``(H, W)`` global).
        low: lower percentile in [0, 100).
        high: upper percentile in (low, 100].
        per_channel: percentiles per channel (and per batch item) instead of over the whole tensor.

    Returns:
        float tensor of the same shape.
    """
    lo, hi = _percentiles(x, low, high, per_channel)
    return torch.maximum(torch.minimum(x.float(), hi), lo)


def percentile_stretch(x: Tensor, low: float = 1.0, high: float = 99.5, per_channel: bool = True) -> Tensor:
    """Map the ``low``..``high`` percentile range linearly to [0, 1] and clip (NaN -> 0).

    This is saropt's default SAR display/radiometric mapping (dB, 1%-99.5%).
    """
    lo, hi = _percentiles(x, low, high, per_channel)
    out = (x.float() - lo) / torch.clamp(hi - lo, min=1e-12)
    return torch.nan_to_num(out.clamp_(0.0, 1.0), nan=0.0)


def normalize(x: Tensor, mean: Sequence[float] | float, std: Sequence[float] | float) -> Tensor:
    """Per-channel ``(x - mean) / std`` over the channel dim (-3).

    Raises:
        InputError: a std is zero, or the number of values does not match the channels.
    """
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).reshape(-1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).reshape(-1, 1, 1)
    if bool((s == 0).any()):
        raise InputError("normalize: std must be non-zero")
    c = x.shape[-3]
    if m.shape[0] not in (1, c) or s.shape[0] not in (1, c):
        raise InputError(f"normalize: {m.shape[0]} means / {s.shape[0]} stds for {c} channels")
    return (x.float() - m) / s


def standardize(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-sample, per-channel zero mean and unit variance over the last two dims."""
    xf = x.float()
    m = xf.mean(dim=(-2, -1), keepdim=True)
    s = xf.std(dim=(-2, -1), keepdim=True)
    return (xf - m) / (s + eps)


# ------------------------------------------------------------------------------------------------------------
# Paired geometry (sample functions)
# ------------------------------------------------------------------------------------------------------------


def _spatial_keys(sample: Sample) -> list[str]:
    return [k for k, v in sample.items() if k not in _NON_SPATIAL and isinstance(v, Tensor) and v.dim() >= 2]


def _hw(sample: Sample) -> tuple[int, int]:
    keys = _spatial_keys(sample)
    if not keys:
        raise InputError("sample has no image tensors (expected 'sar' and 'opt')")
    h, w = sample[keys[0]].shape[-2:]
    for k in keys[1:]:
        if tuple(sample[k].shape[-2:]) != (h, w):
            raise InputError(
                f"sample tensors differ in size: {keys[0]} {(h, w)} vs {k} {tuple(sample[k].shape[-2:])}"
            )
    return int(h), int(w)


def _with(sample: Sample, **meta: Any) -> Sample:
    out = dict(sample)
    if meta:
        m = dict(sample.get("meta", {}))
        m.update(meta)
        out["meta"] = m
    return out


def hflip(sample: Sample) -> Sample:
    """Flip every spatial tensor left-right."""
    out = _with(sample)
    for k in _spatial_keys(sample):
        out[k] = torch.flip(sample[k], dims=(-1,))
    return out


def vflip(sample: Sample) -> Sample:
    """Flip every spatial tensor top-bottom."""
    out = _with(sample)
    for k in _spatial_keys(sample):
        out[k] = torch.flip(sample[k], dims=(-2,))
    return out


def rot90(sample: Sample, k: int = 1) -> Sample:
    """Rotate every spatial tensor by ``k`` quarter turns counter-clockwise (``torch.rot90`` on dims -2,
    -1)."""
    out = _with(sample)
    for key in _spatial_keys(sample):
        out[key] = torch.rot90(sample[key], int(k) % 4, dims=(-2, -1))
    return out


def crop(sample: Sample, top: int, left: int, height: int, width: int) -> Sample:
    """Crop every spatial tensor to rows ``top:top+height``, columns ``left:left+width``.

    Convention:
        x = column, y = row, 0-based. ``meta["window"]`` (when present) moves by ``(left, top)`` and takes the
        new size.

    Raises:
        InputError: the crop does not fit inside the sample.
    """
    h, w = _hw(sample)
    if top < 0 or left < 0 or height < 1 or width < 1 or top + height > h or left + width > w:
        raise InputError(f"crop ({top}, {left}, {height}, {width}) does not fit in a {h}x{w} sample")
    meta = {}
    win = sample.get("meta", {}).get("window")
    if win is not None:
        meta["window"] = (int(win[0]) + left, int(win[1]) + top, width, height)
    out = _with(sample, **meta)
    for k in _spatial_keys(sample):
        out[k] = sample[k][..., top : top + height, left : left + width]
    return out


def center_crop(sample: Sample, size: int | tuple[int, int]) -> Sample:
    """Crop the central ``size`` (int or ``(height, width)``)."""
    h, w = _hw(sample)
    ch, cw = (size, size) if isinstance(size, int) else size
    return crop(sample, (h - ch) // 2, (w - cw) // 2, ch, cw)


def misalign(sample: Sample, dx: int, dy: int, size: int | tuple[int, int] | None = None) -> Sample:
    """Shift the optical image against the SAR image by a known integer offset (for matching models).

    The SAR (and every other spatial tensor except ``opt``) is cropped to ``size``, centred; the optical crop
    is taken ``dx`` columns right and ``dy`` rows down of it. Both crops have the same size.

    Args:
        sample: a sample with ``sar`` and ``opt``.
        dx: column offset (may be negative).
        dy: row offset (may be negative).
        size: output size (int or ``(height, width)``); default the largest that fits:
            ``(H - |dy|, W - |dx|)``.

    Returns:
        The cropped sample with ``meta["shift"] = (dx, dy)``.

    Convention:
        x = column, y = row, 0-based. Optical -> SAR transform: ``x_sar = x_opt + dx``, ``y_sar = y_opt +
        dy``; a ground feature at SAR pixel (x, y) is at optical pixel (x - dx, y - dy).

    Raises:
        InputError: the shifted crop does not fit.
    """
    h, w = _hw(sample)
    dx, dy = int(dx), int(dy)
    if size is None:
        oh, ow = h - abs(dy), w - abs(dx)
        top, left = max(0, -dy), max(0, -dx)
    else:
        oh, ow = (size, size) if isinstance(size, int) else size
        top, left = (h - oh) // 2, (w - ow) // 2
    otop, oleft = top + dy, left + dx
    if (
        min(top, left, otop, oleft) < 0
        or max(top, otop) + oh > h
        or max(left, oleft) + ow > w
        or oh < 1
        or ow < 1
    ):
        raise InputError(
            f"shift ({dx}, {dy}) with output {oh}x{ow} does not fit in a {h}x{w} sample; crop smaller"
        )
    opt = sample["opt"]
    out = crop(sample, top, left, oh, ow)
    out["opt"] = opt[..., otop : otop + oh, oleft : oleft + ow]
    out["meta"] = dict(out.get("meta", {}))
    out["meta"]["shift"] = (dx, dy)
    return out


# ------------------------------------------------------------------------------------------------------------
# Module twins
# ------------------------------------------------------------------------------------------------------------


def _rand(generator: torch.Generator | None) -> float:
    return float(torch.rand((), generator=generator))


def _randint(low: int, high: int, generator: torch.Generator | None) -> int:
    """Uniform integer in ``[low, high]``."""
    return int(torch.randint(low, high + 1, (), generator=generator))


class SampleTransform(nn.Module):
    """Base of the sample-dict modules: ``forward(sample) -> sample``."""

    def forward(self, sample: Sample) -> Sample:  # pragma: no cover - overridden
        return sample


class ApplyToKeys(SampleTransform):
    """Apply a tensor function to some keys of a sample (e.g. ``ApplyToKeys(intensity_to_db, ("sar",))``)."""

    def __init__(self, fn: Any, keys: Sequence[str] = ("sar",), **kwargs: Any) -> None:
        super().__init__()
        self.fn, self.keys, self.kwargs = fn, tuple(keys), kwargs

    def forward(self, sample: Sample) -> Sample:
        out = dict(sample)
        for k in self.keys:
            out[k] = self.fn(sample[k], **self.kwargs)
        return out


class ToDB(ApplyToKeys):
    """SAR intensity (``kind="intensity"``) or amplitude (``kind="amplitude"``) to dB."""

    def __init__(self, keys: Sequence[str] = ("sar",), kind: str = "intensity", eps: float = 1e-10) -> None:
        if kind not in ("intensity", "amplitude"):
            raise InputError(f"kind must be 'intensity' or 'amplitude', got {kind!r}")
        super().__init__(intensity_to_db if kind == "intensity" else amplitude_to_db, keys, eps=eps)


class PercentileStretch(ApplyToKeys):
    """:func:`percentile_stretch` on some keys."""

    def __init__(
        self, keys: Sequence[str] = ("sar",), low: float = 1.0, high: float = 99.5, per_channel: bool = True
    ) -> None:
        super().__init__(percentile_stretch, keys, low=low, high=high, per_channel=per_channel)


class Normalize(ApplyToKeys):
    """:func:`normalize` on one key."""

    def __init__(self, key: str, mean: Sequence[float] | float, std: Sequence[float] | float) -> None:
        super().__init__(normalize, (key,), mean=mean, std=std)


class RandomFlip(SampleTransform):
    """Random left-right and top-bottom flips of the whole sample (records
    ``meta["hflip"]``/``["vflip"]``)."""

    def __init__(self, p_h: float = 0.5, p_v: float = 0.5, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p_h, self.p_v, self.generator = p_h, p_v, generator

    def forward(self, sample: Sample) -> Sample:
        h = _rand(self.generator) < self.p_h
        v = _rand(self.generator) < self.p_v
        out = hflip(sample) if h else sample
        out = vflip(out) if v else out
        return _with(out, hflip=h, vflip=v)


class RandomRot90(SampleTransform):
    """Random quarter turns (k uniform in 0..3 with probability ``p``, else 0; records ``meta["rot90"]``).

    Non-square samples get only k in {0, 2} so that shapes stay batchable.
    """

    def __init__(self, p: float = 1.0, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p, self.generator = p, generator

    def forward(self, sample: Sample) -> Sample:
        h, w = _hw(sample)
        k = 0
        if _rand(self.generator) < self.p:
            k = _randint(0, 3, self.generator) if h == w else 2 * _randint(0, 1, self.generator)
        return _with(rot90(sample, k), rot90=k)


class RandomCrop(SampleTransform):
    """A random ``size`` crop, the same for every spatial tensor."""

    def __init__(self, size: int | tuple[int, int], generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.generator = generator

    def forward(self, sample: Sample) -> Sample:
        h, w = _hw(sample)
        ch, cw = self.size
        if ch > h or cw > w:
            raise InputError(f"crop {ch}x{cw} is larger than the {h}x{w} sample")
        return crop(sample, _randint(0, h - ch, self.generator), _randint(0, w - cw, self.generator), ch, cw)


class CenterCrop(SampleTransform):
    """:func:`center_crop` as a module."""

    def __init__(self, size: int | tuple[int, int]) -> None:
        super().__init__()
        self.size = size

    def forward(self, sample: Sample) -> Sample:
        return center_crop(sample, self.size)


class RandomMisalign(SampleTransform):
    """A random known shift of the optical image, ``|dx|, |dy| <= max_shift``, output ``size`` (centred).

    ``size`` defaults to ``H - 2 * max_shift`` so that every shift fits; ``meta["shift"]`` holds ``(dx, dy)``
    (see :func:`misalign` for the convention).
    """

    def __init__(
        self,
        max_shift: int,
        size: int | tuple[int, int] | None = None,
        p: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if max_shift < 0:
            raise InputError(f"max_shift must be >= 0, got {max_shift}")
        self.max_shift, self.size, self.p, self.generator = int(max_shift), size, p, generator

    def forward(self, sample: Sample) -> Sample:
        h, w = _hw(sample)
        size = self.size if self.size is not None else (h - 2 * self.max_shift, w - 2 * self.max_shift)
        dx = dy = 0
        if _rand(self.generator) < self.p:
            dx = _randint(-self.max_shift, self.max_shift, self.generator)
            dy = _randint(-self.max_shift, self.max_shift, self.generator)
        return misalign(sample, dx, dy, size)
