"""Settings of automatic SAR-optical registration, with the defaults and why they were chosen.

Convention:
    Sizes, radii and spacings are in pixels of the level they apply to (the final level is the full-resolution
    SAR grid); angles in degrees, counter-clockwise on screen (OpenCV sign); scales are SAR pixels per optical
    pixel.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from saropt.errors import ConfigError


def thread_count(threads: int | None) -> int:
    """Worker threads to use: ``threads``, or one per CPU core (at most 4) when ``None``."""
    if threads is not None:
        return max(1, int(threads))
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class AutoConfig:
    """How :func:`~saropt.registration.auto.auto_tiepoints` searches, matches and filters.

    Coarse search (no prior; see :mod:`~saropt.registration.auto.coarse`):

    Attributes:
        coarse_size: longer side, in pixels, of the SAR at the coarse level (the angle/scale grid runs at half of
            it). 128 resolves SAR structure well through speckle at 1-3 m; 64 lost a third of the SRIF pairs.
        retry_coarse_size: when the final pass finds fewer than ``max(2 min_inliers, 20 %)`` affine inliers, the
            whole search is run again with this coarse size and the better result kept (``None``: no retry).
            Costs about three times the first search, only on hard pairs (low-texture farmland, 10 m SAR).
        angle_min_deg: smallest rotation tried (optical -> SAR).
        angle_max_deg: largest rotation tried (exclusive). The default full circle handles any rotation.
        angle_step_deg: grid step; the orientation field tolerates about half a step, hill-climbing refines.
        scale_prior: ``"footprint"``: the images are taken to cover about the same ground, so the expected scale
            is ``sqrt(SAR area / optical area)`` (pixels of the region and the optical image); ``"one"``: same
            pixel size. Ignored when a prior transform (or geocoding) is available.
        scale_range: factor around the expected scale searched in both directions (1.0: scale fixed).
        scale_step: ratio between neighbouring grid scales.
        use_geocoding: use the scenes' georeferencing as the prior when both are georeferenced.
        prior_angle_tol_deg: rotation searched around a prior (geocoding can be off in rotation for
            un-orthorectified SAR); the translation is searched over the whole coarse level.

    Fine matching (see :mod:`~saropt.registration.auto.matcher`):

    Attributes:
        n_orientations: oriented-gradient channels.
        sar_operator: SAR gradient operator, ``"ratio"`` (ROEWA-like, speckle-robust) or ``"log_gaussian"``.
        sar_sigma: SAR gradient scale in pixels (ratio boxes are ``round(1.5 sigma)`` deep).
        opt_sigma: optical gradient scale in pixels.
        channel_sigma: spatial smoothing of the channels in pixels.
        template_size: template side in pixels at every level.
        search_radius: largest shift searched at each fine level, in that level's pixels.
        final_radius: search radius of the last pass at full resolution (after the transform is refitted).
        max_points: candidates per level at most; the grid spacing follows from it.
        refit_points: candidates of a pass that only refits the transform for the next one (every in-memory
            pass but the final one and those that seed chips), on a grid as coarse as that many need; when its
            affine has fewer than ``3 min_inliers`` inliers the pass is repeated with ``max_points``. An affine
            through a couple of dozen well-spread inliers is already good to a fraction of the final search
            radius, and a wrong start shows in this cheap pass.
        chip_points: candidates matched in chips at full resolution on scenes too big for memory (taken from the
            reliable matches of the level above, which then picks this many); about 40 % of them stay reliable
            on 1 m SAR, and each costs a few milliseconds.
        min_spacing: smallest grid spacing in pixels (candidates closer than this are not independent).
        max_level_pixels: a level whose SAR region has more pixels than this is matched in small chips read
            around each candidate instead of in memory (bounds memory on big scenes).

    Filtering and fitting:

    Attributes:
        min_reliability: reliability a tie point needs to take part in the fit (stage 1 of the filtering).
        ransac_threshold_px: inlier distance at full resolution (stage 2), SAR pixels.
        ransac_iterations: most RANSAC samples.
        min_inliers: fewest inliers a registration may rest on (more than an affine's 3 so that the fit is
            checked by redundant points).
        keep_unreliable: :func:`auto_tiepoints` also returns the points below ``min_reliability`` (their
            ``score`` says so); off by default so that a plain fit of the result is safe.
        seed: RANSAC seed (results are deterministic).
        threads: worker threads of the coarse search and the matching passes (``None``: one per CPU core, at
            most 4). Results do not depend on it.
        array_nodata: for plain arrays: pixels at this value connected to the image border are nodata (black
            wedges of rotated patches); ``None`` treats every pixel as valid.
    """

    coarse_size: int = 128
    retry_coarse_size: int | None = 256
    angle_min_deg: float = -180.0
    angle_max_deg: float = 180.0
    angle_step_deg: float = 10.0
    scale_prior: Literal["footprint", "one"] = "footprint"
    scale_range: float = 1.1
    scale_step: float = 1.1
    use_geocoding: bool = True
    prior_angle_tol_deg: float = 3.0

    n_orientations: int = 9
    sar_operator: Literal["ratio", "log_gaussian"] = "ratio"
    sar_sigma: float = 1.5
    opt_sigma: float = 1.0
    channel_sigma: float = 1.0
    template_size: int = 48
    search_radius: int = 10
    final_radius: int = 4
    max_points: int = 400
    refit_points: int = 100
    chip_points: int = 1200
    min_spacing: int = 12
    max_level_pixels: int = 2048 * 2048

    min_reliability: float = 0.5
    ransac_threshold_px: float = 3.0
    ransac_iterations: int = 2000
    min_inliers: int = 6
    keep_unreliable: bool = False
    seed: int = 0
    threads: int | None = None
    array_nodata: float | None = 0.0

    def __post_init__(self) -> None:
        if self.coarse_size < 32:
            raise ConfigError(f"coarse_size must be >= 32 pixels, got {self.coarse_size}")
        if not self.angle_max_deg > self.angle_min_deg:
            raise ConfigError("angle_max_deg must exceed angle_min_deg")
        if self.angle_step_deg <= 0:
            raise ConfigError(f"angle_step_deg must be positive, got {self.angle_step_deg}")
        if self.scale_prior not in ("footprint", "one"):
            raise ConfigError(f"scale_prior must be 'footprint' or 'one', got {self.scale_prior!r}")
        if self.scale_range < 1.0 or self.scale_step <= 1.0:
            raise ConfigError("scale_range must be >= 1 and scale_step > 1")
        if self.sar_operator not in ("ratio", "log_gaussian"):
            raise ConfigError(f"sar_operator must be 'ratio' or 'log_gaussian', got {self.sar_operator!r}")
        if self.template_size < 16 or self.search_radius < 2 or self.final_radius < 1:
            raise ConfigError("template_size must be >= 16, search_radius >= 2 and final_radius >= 1")
        if self.max_points < 3 or self.refit_points < 3 or self.min_spacing < 1:
            raise ConfigError("max_points and refit_points must be >= 3 and min_spacing >= 1")
        if not 0.0 <= self.min_reliability <= 1.0:
            raise ConfigError(f"min_reliability must be in [0, 1], got {self.min_reliability}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1 (or None for one per CPU core), got {self.threads}")
        if self.ransac_threshold_px <= 0 or self.ransac_iterations < 1 or self.min_inliers < 3:
            raise ConfigError("ransac_threshold_px must be > 0, ransac_iterations >= 1 and min_inliers >= 3")

    def angles(self) -> tuple[float, ...]:
        """The rotation grid of the coarse search (degrees)."""
        n = max(1, round((self.angle_max_deg - self.angle_min_deg) / self.angle_step_deg))
        return tuple(self.angle_min_deg + k * self.angle_step_deg for k in range(n))

    def scales(self, expected: float) -> tuple[float, ...]:
        """The scale grid of the coarse search around ``expected``."""
        import math

        if self.scale_range <= 1.0 + 1e-9:
            return (expected,)
        k = max(1, math.ceil(math.log(self.scale_range) / math.log(self.scale_step) - 1e-9))
        return tuple(expected * self.scale_step**i for i in range(-k, k + 1))

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (for RESULT.json)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AutoConfig:
        """Build from a dict, rejecting unknown keys.

        Raises:
            ConfigError: for unknown keys or invalid values.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown auto-registration settings {unknown}; valid: {sorted(names)}")
        return cls(**d)
