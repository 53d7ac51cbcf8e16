"""Geometric transform models between optical and SAR pixel grids (contract; implementations below).

Convention:
    A transform maps OPTICAL pixel coordinates to SAR pixel coordinates (``forward``), and ``inverse`` maps SAR
    pixel coordinates to optical ones (used to warp the optical image onto the SAR grid). Pixel coordinates:
    x = column, y = row, 0-based, pixel centres at integer coordinates. Linear models expose ``matrix``, the 3x3
    homogeneous matrix of ``forward`` in those coordinates.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np


class Transform(ABC):
    """A fitted optical -> SAR pixel mapping.

    Convention:
        ``forward``: optical (x=col, y=row) -> SAR (x=col, y=row); ``inverse``: SAR -> optical. 0-based, pixel
        centres at integer coordinates.
    """

    #: registry name: "identity", "similarity", "affine", "projective", "polynomial2", "tps"
    name: ClassVar[str]
    #: the fewest tie points the model can be fitted from
    min_points: ClassVar[int]

    @abstractmethod
    def forward(self, xy: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` optical pixel coordinates to SAR pixel coordinates."""

    @abstractmethod
    def inverse(self, xy: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` SAR pixel coordinates to optical pixel coordinates."""

    @property
    def matrix(self) -> np.ndarray | None:
        """3x3 matrix of ``forward`` for linear models, else ``None``."""
        return None

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable parameters; ``transform_from_dict`` restores it."""
