"""No-data score: the fraction of a patch where the SAR or the warped optical has no valid value.

Convention:
    ``valid`` is an ``(H, W)`` mask in the SAR patch's pixel grid (x = column, y = row).
"""

from __future__ import annotations

import numpy as np


def nodata_fraction(valid: np.ndarray) -> float:
    """Fraction of pixels where ``valid`` is False (SAR nodata, optical nodata or outside the optical image).

    Args:
        valid: ``(H, W)`` bool mask, True where both SAR and warped optical are valid.

    Returns:
        A fraction in ``[0, 1]`` (1 for an empty mask).
    """
    mask = np.asarray(valid, dtype=bool)
    if mask.size == 0:
        return 1.0
    return 1.0 - np.count_nonzero(mask) / float(mask.size)
