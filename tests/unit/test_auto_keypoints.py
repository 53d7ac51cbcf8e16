"""Candidate selection: textured, well spread, inside both images; nothing on a blank image."""

from __future__ import annotations

import numpy as np

from saropt.registration.auto.keypoints import grid_peaks, select_candidates
from tests.unit.autoutil import optical_world


def test_grid_peaks_keep_one_maximum_per_cell() -> None:
    resp = np.zeros((40, 40), np.float32)
    resp[3, 4] = 5.0
    resp[5, 6] = 4.0  # same 10 x 10 cell, weaker: suppressed
    resp[25, 31] = 3.0
    resp[35, 12] = 0.01  # too weak relative to the others
    pts = grid_peaks(resp, np.ones_like(resp, bool), spacing=10, rel_threshold=0.05)
    assert pts.tolist() == [[4, 3], [31, 25]]


def test_candidates_cover_the_overlap_and_respect_validity() -> None:
    img = optical_world(256, seed=5) * 255
    valid = np.ones((256, 256), bool)
    other = valid.copy()
    other[:, 160:] = False  # the other image ends here
    pts, texture = select_candidates(img, valid, other, template_size=32, spacing=24, max_points=200)
    assert texture > 0
    assert len(pts) >= 25
    assert (pts[:, 0] <= 160 - 16).all() and (pts[:, 0] >= 16).all()
    cells = {(int(x) // 48, int(y) // 48) for x, y in pts}
    assert len(cells) >= 12  # spread over the admissible area, not clustered


def test_blank_image_gives_no_candidates() -> None:
    img = np.full((128, 128), 77.0, np.float32)
    pts, texture = select_candidates(img, np.ones_like(img, bool), None, 32, 16)
    assert len(pts) == 0 and texture == 0.0
