"""Thresholds and switches of the patch quality filters (QXS-SAROPT step G).

Every filter writes a score; :func:`saropt.quality.score.decide` turns scores into flags with these thresholds.
The defaults were chosen on real Sentinel-1/Sentinel-2 and GaoFen-3/WorldView pairs (see each field) and are
recorded in the build configuration, so a dataset can be re-filtered later from its index without recomputing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from saropt.errors import InputError

#: the filters, in the order their reasons are reported
FILTERS = ("nodata", "texture", "seamline", "duplicate", "regcheck")


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the quality filters.

    Attributes:
        nodata_max: reject when the fraction of pixels where the SAR or the warped optical is invalid exceeds
            this (0.01 = 1%).
        texture_min: reject as texture-less (open sea, flat desert, cloud) when *both* modalities have fewer
            structure bits than this. A modality's structure bits are the entropy of its detrended, speckle-
            deflated block means quantised in steps of ``texture_step`` grey levels; each bit doubles the
            number of distinguishable brightness levels (see :mod:`saropt.quality.texture`). On Sentinel-1/2
            pairs open sea scores at most 3.1 bits and land 4.05 bits or more.
        texture_step: quantisation step of the structure bits, 8-bit grey levels.
        seamline_max: reject when an optical straight-line brightness/colour step without SAR support exceeds
            this many grey levels (see :mod:`saropt.quality.seamline` for measured detection and false-alarm
            rates: with the scene as context 0.3-2.2% of real Sentinel-1/2 and GaoFen-3 + Maxar patches exceed
            25, and 10-38% / 74-85% of patches crossed by injected +-40 / +-60 seams; 20 catches more seams for
            about 1-5% false alarms; ``saropt calibrate`` measures it on your scenes).
        duplicate_max_hamming: two patches whose perceptual hashes differ in at most this many of 64 bits are
            near-duplicates (see :mod:`saropt.quality.duplicates`).
        regcheck_min: reject as locally misregistered when the registration-check margin is below this. The
            margin is in ``[-1, 1]``: +1 a sharp similarity peak at zero shift, about 0 an ambiguous match
            (e.g. one straight edge), negative: a shifted position matches better than zero shift (see
            :mod:`saropt.quality.regcheck`).
        regcheck_max_shift: search radius of the registration check in pixels.
        regcheck_min_shift: a patch is flagged only when its similarity peak is at least this many pixels from
            zero shift (smaller offsets are within the check's resolution, and within what SAR layover of
            buildings and trees displaces).
        regcheck_min_contrast: a patch is flagged only when the similarity surface's contrast (peak minus
            median) is at least this: weaker surfaces (fields, forest, low-contrast speckle) have peaks that
            wander several pixels on well-registered data. Calibrated on the synthetic demo (truth known,
            0.16 px registration error: 6 of 39 textured patches flagged with no minimum, 2 with 0.07) and
            on synthetic 6 px shifts (contrast 0.10-0.18: all still flagged); on real Sentinel-1/2 patches
            the median contrast is 0.07, so the check abstains (never flags) on about half of them.
        enabled: the filters whose flags reject a patch; scores of disabled filters are not computed (NaN).
    """

    nodata_max: float = 0.01
    texture_min: float = 3.5
    texture_step: float = 2.0
    seamline_max: float = 25.0
    duplicate_max_hamming: int = 6
    regcheck_min: float = -0.1
    regcheck_max_shift: int = 8
    regcheck_min_shift: float = 3.0
    regcheck_min_contrast: float = 0.07
    enabled: tuple[str, ...] = FILTERS

    def __post_init__(self) -> None:
        if not 0.0 <= self.nodata_max <= 1.0:
            raise InputError(f"quality.nodata_max must be a fraction in [0, 1], got {self.nodata_max}")
        if self.texture_step <= 0:
            raise InputError(f"quality.texture_step must be positive (grey levels), got {self.texture_step}")
        if self.seamline_max < 0:
            raise InputError(
                f"quality.seamline_max must be non-negative (grey levels), got {self.seamline_max}"
            )
        if isinstance(self.duplicate_max_hamming, bool) or not 0 <= int(self.duplicate_max_hamming) <= 32:
            raise InputError(
                f"quality.duplicate_max_hamming must be an integer in [0, 32], got {self.duplicate_max_hamming}"
            )
        if not -1.0 <= self.regcheck_min <= 1.0:
            raise InputError(f"quality.regcheck_min must be in [-1, 1], got {self.regcheck_min}")
        if isinstance(self.regcheck_max_shift, bool) or not 2 <= int(self.regcheck_max_shift) <= 64:
            raise InputError(
                f"quality.regcheck_max_shift must be an integer in [2, 64] pixels, got {self.regcheck_max_shift}"
            )
        if not 0.0 <= self.regcheck_min_shift <= self.regcheck_max_shift:
            raise InputError(
                f"quality.regcheck_min_shift must be in [0, regcheck_max_shift] pixels, got {self.regcheck_min_shift}"
            )
        if not 0.0 <= self.regcheck_min_contrast <= 2.0:
            raise InputError(
                f"quality.regcheck_min_contrast must be in [0, 2], got {self.regcheck_min_contrast}"
            )
        enabled = tuple(self.enabled) if not isinstance(self.enabled, str) else (self.enabled,)
        unknown = [f for f in enabled if f not in FILTERS]
        if unknown:
            raise InputError(f"quality.enabled has unknown filters {unknown}; choose from {list(FILTERS)}")
        object.__setattr__(self, "enabled", tuple(f for f in FILTERS if f in enabled))
        object.__setattr__(self, "duplicate_max_hamming", int(self.duplicate_max_hamming))
        object.__setattr__(self, "regcheck_max_shift", int(self.regcheck_max_shift))

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping for YAML/JSON (``enabled`` as a list)."""
        d = asdict(self)
        d["enabled"] = list(self.enabled)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> QualityConfig:
        """Build from a mapping (missing keys take defaults).

        Args:
            d: mapping of field names to values, or ``None`` for the defaults.

        Returns:
            The configuration.

        Raises:
            InputError: for unknown keys or invalid values.
        """
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise InputError(f"quality configuration must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown quality settings {unknown}; known: {sorted(known)}")
        kwargs = dict(d)
        if "enabled" in kwargs and kwargs["enabled"] is not None:
            value = kwargs["enabled"]
            kwargs["enabled"] = (value,) if isinstance(value, str) else tuple(value)
        try:
            return cls(**kwargs)
        except TypeError as exc:  # e.g. a list where a number belongs
            raise InputError(f"invalid quality settings: {exc}") from exc
