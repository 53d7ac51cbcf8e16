"""saropt.registration: transform models, robust fitting to tie points, geocoding, and warping.

* :mod:`~saropt.registration.transforms`: identity, similarity, affine, projective, polynomial2 and tps models
  (:data:`MODELS`, :func:`fit_transform`, :func:`transform_from_dict`);
* :mod:`~saropt.registration.fit`: :func:`fit_registration` (RANSAC outlier flags, residuals, leave-one-out
  RMSE) and :class:`Registration`;
* :mod:`~saropt.registration.geocoding`: tie points from the scenes' CRSs;
* :mod:`~saropt.registration.warp`: the optical image resampled onto a SAR window.

Automatic tie points live in ``saropt.registration.auto`` (imported on demand, not here).

Convention:
    Pixel coordinates x = column, y = row, 0-based, pixel centres at integer coordinates. Transforms map
    OPTICAL -> SAR (``forward``); ``inverse`` maps SAR -> optical and drives the warp.
"""

from __future__ import annotations

from saropt.registration.fit import (
    Registration,
    fit_registration,
    identity_registration,
    registration_from_dict,
)
from saropt.registration.geocoding import geocoding_registration, geocoding_tiepoints
from saropt.registration.transforms import (
    MODELS,
    AffineTransform,
    IdentityTransform,
    LinearTransform,
    PolynomialTransform,
    ProjectiveTransform,
    SimilarityTransform,
    ThinPlateSplineTransform,
    Transform,
    fit_transform,
    transform_from_dict,
)
from saropt.registration.warp import optical_window_for, sample_positions, warp_array, warp_optical

__all__ = [
    "MODELS",
    "AffineTransform",
    "IdentityTransform",
    "LinearTransform",
    "PolynomialTransform",
    "ProjectiveTransform",
    "Registration",
    "SimilarityTransform",
    "ThinPlateSplineTransform",
    "Transform",
    "fit_registration",
    "fit_transform",
    "geocoding_registration",
    "geocoding_tiepoints",
    "identity_registration",
    "optical_window_for",
    "registration_from_dict",
    "sample_positions",
    "transform_from_dict",
    "warp_array",
    "warp_optical",
]
