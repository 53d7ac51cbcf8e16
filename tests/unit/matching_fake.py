"""Tiny fake saropt datasets for the matching tests, in the real ``saropt build`` layout.

``index.parquet`` (patch_id, sar_path, opt_path, scene_id, col_off, row_off, width, height, keep, split) and
PNG patches under ``sar_<P>_oc_0/`` and ``opt_<P>_oc_0/``. Each scene is a random smooth texture with edges;
the SAR patch is the texture with multiplicative speckle, the optical patch an RGB colouring of it, so SAR
and optical of one place share structure (as real pairs do) while different places do not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _texture(rng: np.random.Generator, side: int) -> np.ndarray:
    import cv2

    base = rng.random((side // 8, side // 8)).astype(np.float32)
    img = cv2.resize(base, (side, side), interpolation=cv2.INTER_CUBIC)
    # a few sharp rectangles (fields, buildings) give edges
    for _ in range(side // 16):
        x, y = rng.integers(0, side - 8, size=2)
        w, h = rng.integers(4, 16, size=2)
        img[y : y + h, x : x + w] = rng.random()
    img = (img - img.min()) / max(1e-6, float(np.ptp(img)))
    return img


def write_fake_saropt(
    root: Path,
    scenes: dict[str, str] | None = None,
    scene_side: int = 96,
    patch: int = 32,
    stride: int = 32,
    seed: int = 0,
    identical: bool = False,
    truth_offsets: dict[str, tuple[int, int]] | None = None,
) -> Path:
    """Write a fake saropt dataset and return its root.

    Args:
        root: output folder.
        scenes: scene id -> split (default: 4 train, 2 val, 2 test scenes).
        scene_side: scene side in pixels.
        patch: patch side.
        stride: grid stride.
        seed: random seed.
        identical: make each SAR patch exactly the luminance of its optical patch (no speckle), so that
            training-free measures must match perfectly.
        truth_offsets: scene id -> ``(dx, dy)``: that scene's optical content sits ``dx, dy`` px away from
            where the (wrong) truth says, ``opt(x + dx, y + dy) ~ sar(x, y)`` (wrapped at the scene border).
    """
    import pandas as pd
    from PIL import Image

    scenes = scenes or {
        "s0": "train",
        "s1": "train",
        "s2": "train",
        "s3": "train",
        "s4": "val",
        "s5": "val",
        "s6": "test",
        "s7": "test",
    }
    rng = np.random.default_rng(seed)
    sar_dir, opt_dir = root / f"sar_{patch}_oc_0", root / f"opt_{patch}_oc_0"
    sar_dir.mkdir(parents=True, exist_ok=True)
    opt_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    pid = 0
    for scene, split in scenes.items():
        tex = _texture(rng, scene_side)
        speckle = rng.gamma(4.0, 1.0 / 4.0, size=tex.shape)
        sar = np.clip(255 * (0.15 + 0.7 * tex) * speckle, 0, 255).astype(np.uint8)
        opt = np.stack([tex, 1.0 - tex, 0.5 + 0.5 * np.sin(3 * tex)], axis=-1)
        opt = np.clip(255 * opt, 0, 255).astype(np.uint8)
        if identical:
            opt = np.repeat(np.clip(255 * tex, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
            sar = opt[..., 0].copy()
        dx, dy = (truth_offsets or {}).get(scene, (0, 0))
        opt = np.roll(opt, (dy, dx), axis=(0, 1))
        for r in range(0, scene_side - patch + 1, stride):
            for c in range(0, scene_side - patch + 1, stride):
                name = f"{pid}.png"
                Image.fromarray(sar[r : r + patch, c : c + patch]).save(sar_dir / name)
                Image.fromarray(opt[r : r + patch, c : c + patch]).save(opt_dir / name)
                rows.append(
                    {
                        "patch_id": pid,
                        "sar_path": f"{sar_dir.name}/{name}",
                        "opt_path": f"{opt_dir.name}/{name}",
                        "scene_id": scene,
                        "col_off": c,
                        "row_off": r,
                        "width": patch,
                        "height": patch,
                        "keep": True,
                        "split": split,
                    }
                )
                pid += 1
    pd.DataFrame(rows).to_parquet(root / "index.parquet")
    return root
