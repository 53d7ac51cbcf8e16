"""Tie points between a SAR scene and an optical scene, and their file formats.

Convention:
    Pixel coordinates, x = column, y = row, 0-based, pixel centres at integer coordinates, in each image's own
    pixel grid. ``sar_xy[i]`` and ``opt_xy[i]`` are the same ground point seen in the SAR and the optical image.
    File formats with other conventions (QGIS: pixel corners, y negated; GDAL GCPs: pixel corners; MATLAB:
    1-based) are converted on read and write, as each reader documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from saropt.errors import TiePointError


@dataclass(frozen=True, eq=False)
class TiePoints:
    """N tie points between a SAR image and an optical image.

    Attributes:
        sar_xy: ``(N, 2)`` float64 SAR pixel coordinates (x=col, y=row).
        opt_xy: ``(N, 2)`` float64 optical pixel coordinates (x=col, y=row).
        score: ``(N,)`` float64 reliability in [0, 1] (1 = certain; manual points get 1), or ``None``.
        source: where they came from: ``"csv"``, ``"qgis"``, ``"checkpoints"``, ``"gcps"``, ``"geocoding"``,
            ``"identity"``, ``"auto"``, ``"synthetic"``...

    Convention:
        x = column, y = row, 0-based, pixel centres at integer coordinates, each in its own image grid.
    """

    sar_xy: np.ndarray
    opt_xy: np.ndarray
    score: np.ndarray | None = None
    source: str = "unknown"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sar = np.asarray(self.sar_xy, dtype=np.float64).reshape(-1, 2)
        opt = np.asarray(self.opt_xy, dtype=np.float64).reshape(-1, 2)
        if sar.shape != opt.shape:
            raise TiePointError(f"tie points: {len(sar)} SAR points but {len(opt)} optical points")
        if not (np.isfinite(sar).all() and np.isfinite(opt).all()):
            raise TiePointError("tie points contain NaN or infinite coordinates")
        object.__setattr__(self, "sar_xy", sar)
        object.__setattr__(self, "opt_xy", opt)
        if self.score is not None:
            score = np.asarray(self.score, dtype=np.float64).reshape(-1)
            if score.shape[0] != sar.shape[0]:
                raise TiePointError(f"tie points: {len(score)} scores for {len(sar)} points")
            object.__setattr__(self, "score", score)

    def __len__(self) -> int:
        return int(self.sar_xy.shape[0])

    def subset(self, mask_or_index: np.ndarray) -> "TiePoints":
        """The tie points selected by a boolean mask or an index array."""
        idx = np.asarray(mask_or_index)
        return replace(
            self,
            sar_xy=self.sar_xy[idx],
            opt_xy=self.opt_xy[idx],
            score=None if self.score is None else self.score[idx],
        )

    def swapped(self) -> "TiePoints":
        """Roles exchanged (for fitting the SAR -> optical direction). Used internally by the fitters."""
        return replace(self, sar_xy=self.opt_xy, opt_xy=self.sar_xy)
