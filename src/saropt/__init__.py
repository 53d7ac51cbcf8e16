"""saropt: SAR-optical data fusion.

Build registered SAR/optical patch-pair datasets from scene pairs, load the public SAR-optical datasets, train and
evaluate matching models, and detect ships. Heavy submodules (torch, OpenCV) are imported lazily: ``import saropt``
stays fast.

Pixel convention used everywhere: x = column, y = row, 0-based, pixel centres at integer coordinates (the centre of
the top-left pixel is (0, 0), its outer corner is (-0.5, -0.5)).
"""

from __future__ import annotations

__version__ = "0.1.0"

from saropt.errors import SaroptError

__all__ = ["SaroptError", "__version__"]
