"""Periodic noise textures sampled in world coordinates.

A synthetic world needs texture (crop rows, tree crowns, wind on the sea) that is a function of the *ground*
position, so that the SAR grid, the optical grid and every tile of either see the same ground. Storing noise
for a 20 km world at 1 m would cost gigabytes, so each texture is a small periodic tile (a few hundred texels)
made by filtering white noise in the Fourier domain, and is sampled through an affine map with OpenCV's
``warpAffine`` and ``BORDER_WRAP``. At the texel sizes used (1-12 m) the period is 0.5-6 km, and textures of
different scales are mixed, so the repetition does not show.

Convention:
    World coordinates are metres, x east, y south (the same axes as the SAR grid). A grid is described by a
    2x3 matrix ``px_to_world`` mapping pixel (x=col, y=row; pixel centres at integers) to world metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

_DEQUANT = ((np.arange(256, dtype=np.float32) - 128.0) / 32.0).astype(np.float32)

__all__ = ["NoiseTexture", "make_texture", "make_texture_bank", "sample_texture"]


@dataclass(frozen=True, eq=False)
class NoiseTexture:
    """A periodic, zero-mean, unit-variance noise tile.

    Attributes:
        data: ``(N, N)`` float32 tile; opposite edges join seamlessly.
        texel_m: ground size of one texel in metres.
    """

    data: np.ndarray
    texel_m: float

    @cached_property
    def tiled_u8(self) -> np.ndarray:
        """The tile repeated 4 x 4 and quantised to uint8 (``128 + 32 * value``): OpenCV warps 8-bit images
        about ten times faster than float ones, and 1/32 of a standard deviation is far below what shows."""
        q = np.clip(np.rint(128.0 + 32.0 * self.data), 0, 255).astype(np.uint8)
        return np.tile(q, (4, 4))


def make_texture(rng: np.random.Generator, size: int, corr_texels: float, texel_m: float) -> NoiseTexture:
    """Gaussian-correlated periodic noise.

    Args:
        rng: random generator (the texture is a pure function of its state).
        size: tile side in texels (a power of two is fastest).
        corr_texels: standard deviation of the Gaussian correlation, in texels.
        texel_m: ground size of a texel in metres.

    Returns:
        The texture, normalised to zero mean and unit standard deviation.
    """
    white = rng.standard_normal((size, size))
    f = np.fft.fftfreq(size)
    fx, fy = np.meshgrid(f, f)
    # Fourier transform of a Gaussian kernel with std corr_texels (periodic convolution).
    gain = np.exp(-2.0 * (np.pi * corr_texels) ** 2 * (fx * fx + fy * fy))
    tex = np.real(np.fft.ifft2(np.fft.fft2(white) * gain))
    tex = (tex - tex.mean()) / max(float(tex.std()), 1e-12)
    return NoiseTexture(tex.astype(np.float32), float(texel_m))


def sample_texture(
    texture: NoiseTexture,
    px_to_world: np.ndarray,
    shape: tuple[int, int],
    offset_m: tuple[float, float] = (0, 0),
) -> np.ndarray:
    """Sample a texture on a pixel grid (bilinear, wrapping).

    Smooth textures (texels several pixels wide) are sampled on a coarser grid and upsampled bilinearly, which
    is indistinguishable and several times faster.

    Args:
        texture: the periodic tile.
        px_to_world: ``(2, 3)`` affine from grid pixels to world metres.
        shape: ``(height, width)`` of the grid.
        offset_m: world shift of the texture (decorrelates several uses of one tile).

    Returns:
        ``(height, width)`` float32 samples.

    Convention:
        Pixel (x=col, y=row), centres at integers; world metres as in the module docstring.
    """
    h, w = int(shape[0]), int(shape[1])
    m = np.asarray(px_to_world, dtype=np.float64).copy()
    pixel_m = math.sqrt(abs(np.linalg.det(m[:, :2])))
    d = max(1, min(8, int(texture.texel_m / max(pixel_m, 1e-9) / 2)))
    if d > 1:
        # Coarse sample k sits at fine pixel (k - 1) * d + (d - 1) / 2, which is what cv2.resize assumes
        # after dropping the first d pixels; one extra sample on each side keeps the edges interpolated.
        c0 = (d - 1) / 2 - d
        m[:, 2] = m[:, 2] + m[:, :2] @ np.array([c0, c0])
        m[:, :2] *= d
        hc, wc = -(-h // d) + 2, -(-w // d) + 2
        coarse = _warp(texture, m, (hc, wc), offset_m)
        return cv2.resize(coarse, (wc * d, hc * d), interpolation=cv2.INTER_LINEAR)[d : d + h, d : d + w]
    return _warp(texture, m, (h, w), offset_m)


def _warp(
    texture: NoiseTexture, px_to_world: np.ndarray, shape: tuple[int, int], offset_m: tuple[float, float]
) -> np.ndarray:
    n = texture.data.shape[0]
    m = px_to_world / texture.texel_m
    m[0, 2] += offset_m[0] / texture.texel_m
    m[1, 2] += offset_m[1] / texture.texel_m
    h, w = shape
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], dtype=np.float64) @ m.T
    lo = corners.min(axis=0)
    # Move the sampled region next to the origin (whole periods, so nothing changes).
    m[:, 2] -= np.floor(lo / n) * n
    hi = corners.max(axis=0) - np.floor(lo / n) * n
    tiled = texture.tiled_u8
    if hi.max() + 2 < tiled.shape[0]:
        # The region fits in the 4x4 repeated tile: the fast border mode gives the same samples as wrapping.
        q = cv2.warpAffine(
            tiled, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT
        )
        return _DEQUANT[q]
    m[:, 2] = np.mod(m[:, 2], n)
    return cv2.warpAffine(
        texture.data, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_WRAP
    )


def make_texture_bank(seed: int) -> dict[str, NoiseTexture]:
    """The textures the renderers use, by name, from a seed.

    ``fine`` (1 m texels, grain), ``blob`` (tree crowns, ~4 m), ``mid`` (~15 m patches), ``low`` (~150 m
    variations).
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x7E47]))
    return {
        "fine": make_texture(rng, 512, 0.6, 1.0),
        "blob": make_texture(rng, 512, 1.4, 1.3),
        "mid": make_texture(rng, 512, 3.0, 4.0),
        "low": make_texture(rng, 512, 10.0, 14.0),
    }
