"""Automatic SAR-optical tie points and registration (structure-based, no manual points).

``auto_tiepoints(sar, opt)`` returns :class:`~saropt.io.tiepoints.TiePoints` like any other tie-point source;
``register(sar, opt)`` fits a model to them with staged outlier flags and returns a
:class:`~saropt.registration.fit.Registration` with ``method="auto"``. Both accept
:class:`~saropt.io.raster.Scene` objects or numpy arrays. Submodules: ``features`` (oriented-gradient channels,
orientation fields), ``keypoints`` (textured, well-spread candidates), ``matcher`` (FFT template matching and
reliability), ``coarse`` (rotation/scale search), ``refine`` (matching passes), ``pipeline``, ``config``.

Convention:
    Pixel coordinates x = column, y = row, 0-based, pixel centres at integer coordinates; transforms map
    OPTICAL -> SAR pixels.
"""

from __future__ import annotations

from saropt.registration.auto.config import AutoConfig
from saropt.registration.auto.pipeline import AutoMatch, auto_tiepoints, match_auto, register

__all__ = ["AutoConfig", "AutoMatch", "auto_tiepoints", "match_auto", "register"]
