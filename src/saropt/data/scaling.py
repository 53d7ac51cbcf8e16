"""How a reader turns stored values into the float tensors it returns.

Every reader keeps its files' native values (uint8 PNG, float32 dB, uint16 reflectance) until the last step,
which is one affine map per channel: ``float = clip((raw - low) / (high - low), 0, 1)`` with NaN replaced by
``nan_value``. Keeping the map explicit lets the packed format store raw arrays (small, exact) and apply the
very same map on read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from saropt.errors import InputError


@dataclass(frozen=True)
class Scaling:
    """Per-channel linear scaling of raw values to float.

    Attributes:
        low: raw value mapped to 0 (one value for all channels, or one per channel).
        high: raw value mapped to 1.
        clip: clip the result to [0, 1].
        nan_value: value that replaces NaN (after scaling).
    """

    low: tuple[float, ...] = (0.0,)
    high: tuple[float, ...] = (255.0,)
    clip: bool = True
    nan_value: float = 0.0

    def __post_init__(self) -> None:
        low = tuple(float(v) for v in np.atleast_1d(self.low))
        high = tuple(float(v) for v in np.atleast_1d(self.high))
        if len(low) != len(high) and 1 not in (len(low), len(high)):
            raise InputError(f"scaling: {len(low)} low values but {len(high)} high values")
        if any(
            h == lo
            for lo, h in zip(
                np.broadcast_to(low, max(len(low), len(high))),
                np.broadcast_to(high, max(len(low), len(high))),
            )
        ):
            raise InputError("scaling: low and high must differ")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @classmethod
    def for_dtype(cls, dtype: Any) -> Scaling:
        """The default scaling of a dtype: 8-bit -> /255, 16-bit unsigned -> /65535, float -> identity."""
        dt = np.dtype(dtype)
        if dt == np.uint8:
            return cls((0.0,), (255.0,))
        if dt == np.uint16:
            return cls((0.0,), (65535.0,))
        if np.issubdtype(dt, np.integer):
            info = np.iinfo(dt)
            return cls((float(info.min),), (float(info.max),))
        return IDENTITY

    def select(self, channels: Sequence[int]) -> Scaling:
        """The scaling of a subset of channels (when per-channel values are given)."""
        if len(self.low) == 1 and len(self.high) == 1:
            return self
        lo = np.broadcast_to(self.low, (max(len(self.low), len(self.high)),))
        hi = np.broadcast_to(self.high, lo.shape)
        return Scaling(tuple(lo[list(channels)]), tuple(hi[list(channels)]), self.clip, self.nan_value)

    def apply(self, raw: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Scale a ``(C, H, W)`` (or ``(B, C, H, W)``) raw array to float32.

        Args:
            raw: raw values.
            out: optional float32 array of the same shape to write into (e.g. shared memory): one pass, no
                temporary.

        Returns:
            float32 array of the same shape (``out`` when given).

        Raises:
            InputError: per-channel values do not match the channels.
        """
        if out is None:
            out = np.empty(raw.shape, dtype=np.float32)
        if isinstance(self, _Identity):
            np.copyto(out, raw, casting="unsafe")
            if np.issubdtype(raw.dtype, np.floating):
                np.nan_to_num(out, copy=False, nan=self.nan_value)
            return out
        c = raw.shape[-3]
        lo = np.asarray(self.low, dtype=np.float32)
        hi = np.asarray(self.high, dtype=np.float32)
        if lo.size not in (1, c) or hi.size not in (1, c):
            raise InputError(
                f"scaling has {max(lo.size, hi.size)} channel values but the array has {c} channels"
            )
        scale = (1.0 / (hi - lo)).astype(np.float32)
        if lo.size == 1 and hi.size == 1 and float(lo[0]) == 0.0:
            np.multiply(raw, scale[0], out=out, casting="unsafe")
            in_range = raw.dtype == np.uint8 and float(hi[0]) >= 255.0  # uint8 / >=255 never leaves [0, 1]
        else:
            np.subtract(raw, lo.reshape(-1, 1, 1), out=out, casting="unsafe")
            out *= scale.reshape(-1, 1, 1)
            in_range = False
        is_float = np.issubdtype(raw.dtype, np.floating)
        if self.clip and is_float and self.nan_value == 0.0:
            # fmax/fmin skip NaN: NaN -> 0 and the clip in two passes (no isnan mask), e.g. SEN12MS dB
            np.fmax(out, 0.0, out=out)
            np.fmin(out, 1.0, out=out)
            return out
        if self.clip and not in_range:
            np.clip(out, 0.0, 1.0, out=out)
        if is_float:
            np.nan_to_num(out, copy=False, nan=self.nan_value)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stored in packed manifests)."""
        return {
            "low": list(self.low),
            "high": list(self.high),
            "clip": self.clip,
            "nan_value": self.nan_value,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaling:
        """Inverse of :meth:`to_dict`."""
        if d.get("identity"):
            return IDENTITY
        return cls(
            tuple(d["low"]), tuple(d["high"]), bool(d.get("clip", True)), float(d.get("nan_value", 0.0))
        )


class _Identity(Scaling):
    def to_dict(self) -> dict[str, Any]:
        return {"identity": True}


#: keep values as they are (float32), NaN -> 0
IDENTITY: Scaling = _Identity((0.0,), (1.0,), clip=False)
UINT8 = Scaling((0.0,), (255.0,))
