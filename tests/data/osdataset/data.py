#!/usr/bin/env python3
"""Write a tiny fake OSdataset copy in the released layout.

Layout (Xiang et al. 2020; public loaders list ``train/`` and read ``sar<n>.png`` / ``opt<n>.png``)::

    256/train/opt<n>.png, 256/train/sar<n>.png, 256/test/...
    512/train/..., 512/test/...

Run as a script to write it beside this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``tests`` importable
    sys.path.append(str(Path(__file__).resolve().parents[3]))
from tests.data._synth import opt_view, sar_view, scene_field, write_png  # noqa: E402


def generate(
    root: Path,
    sizes: tuple[int, ...] = (32, 64),
    train: int = 4,
    test: int = 2,
    size_folders: tuple[str, ...] = ("256", "512"),
) -> Path:
    """Write ``train``/``test`` pairs for each size under ``root/<size folder>`` and return ``root``."""
    root = Path(root)
    for size, folder in zip(sizes, size_folders):
        n = 1
        for split, count in (("train", train), ("test", test)):
            for _ in range(count):
                field = scene_field(10 * size + n, size, size)
                write_png(root / folder / split / f"sar{n}.png", sar_view(field, seed=n))
                write_png(root / folder / split / f"opt{n}.png", opt_view(field))
                n += 1
    return root


if __name__ == "__main__":
    generate(Path(__file__).resolve().parent)
