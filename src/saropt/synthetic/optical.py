"""Render a synthetic world as a very-high-resolution optical (RGB) image.

The look aims at what users know from Google Earth / WorldView true-colour scenes at about 1 m: class colours
with per-object variation (every field, roof and road has its own tone), texture that belongs to the ground
(crop rows at each field's own direction and spacing, blobby tree crowns, waves and sun glint on water, sandy
shallows near the coast), gable roofs lit on the sun side, cast shadows of buildings, ships and forest edges
away from the sun, a slight haze, the sensor's blur (Gaussian PSF) and noise. A mosaicking seamline can be
imposed: on one side of a ground line the image comes from "another acquisition" (brighter, warmer, hazier).

Convention:
    The grid is given by ``px_to_world``, a 2x3 affine from pixel coordinates (x=col, y=row, 0-based, pixel
    centres at integers) to world metres (x east, y south). Any rotation/scale is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import cv2
import numpy as np

from saropt.synthetic.texture import NoiseTexture, sample_texture
from saropt.synthetic.world import (
    CONCRETE_MARKING,
    CONCRETE_RUNWAY,
    ROAD_MAJOR,
    ROAD_TRACK,
    TALL_FOREST,
    LandCover,
    LandcoverRaster,
    World,
    invert_affine,
    rasterize_landcover,
)

__all__ = ["OpticalStyle", "Seamline", "object_colours", "render_optical", "finish_optical"]

_C = LandCover

# Base colours (sRGB, 0-255) of a mid-latitude summer scene.
_BASE = {
    _C.NODATA: (0, 0, 0),
    _C.SEA: (30, 62, 82),
    _C.RIVER: (58, 78, 72),
    _C.CROP_GREEN: (104, 128, 62),
    _C.CROP_DARK: (66, 104, 46),
    _C.CROP_RIPE: (184, 166, 112),
    _C.CROP_HARVESTED: (152, 128, 92),
    _C.FOREST: (46, 72, 40),
    _C.BARE_SOIL: (150, 124, 98),
    _C.GRASS: (112, 134, 76),
    _C.URBAN_GROUND: (128, 126, 116),
    _C.ROAD: (96, 96, 98),
    _C.CONCRETE: (172, 172, 166),
    _C.BUILDING: (150, 150, 150),
    _C.SHIP: (220, 220, 214),
    _C.SAND: (206, 190, 152),
}
_ROOFS = np.array(
    [
        (164, 82, 62),  # terracotta
        (92, 90, 94),  # dark grey tiles
        (172, 168, 160),  # light grey
        (134, 102, 84),  # brown
        (120, 70, 60),  # dark red
        (196, 198, 196),  # hangar (light metal)
        (182, 180, 172),  # concrete flat roof
        (150, 154, 160),  # grey flat roof
        (176, 190, 204),  # blue-grey industrial metal
    ],
    dtype=np.float32,
)
_HULLS = np.array([(120, 48, 44), (40, 52, 84), (70, 70, 72), (226, 226, 220)], dtype=np.float32)
_SHADOW = np.array([0.40, 0.44, 0.56], dtype=np.float32)
_GAUSS_Q = np.array([NormalDist().inv_cdf((k + 0.5) / 256.0) for k in range(256)], dtype=np.float32)
_GAUSS_Q /= np.float32(np.sqrt(np.mean(_GAUSS_Q.astype(np.float64) ** 2)))  # unit variance exactly


@dataclass(frozen=True)
class Seamline:
    """A straight mosaicking seamline on the ground.

    Pixels with ``normal . p > offset`` (world metres) come from the second acquisition, which has per-band
    ``gain`` and additive ``haze`` (DN).
    """

    normal: tuple[float, float]
    offset: float
    gain: tuple[float, float, float]
    haze: tuple[float, float, float]


@dataclass(frozen=True)
class OpticalStyle:
    """Illumination and sensor of the optical render.

    Attributes:
        sun_azimuth_deg: clockwise from north (north = world -y).
        sun_elevation_deg: above the horizon.
        psf_sigma_px: Gaussian blur of the sensor, in pixels.
        noise_dn: standard deviation of additive sensor noise (DN on the 0-255 scale).
        haze: additive haze (DN) per band.
        roof_pitch_deg: pitch of gable roofs (for sun shading).
    """

    sun_azimuth_deg: float = 150.0
    sun_elevation_deg: float = 48.0
    psf_sigma_px: float = 0.6
    noise_dn: float = 1.6
    haze: tuple[float, float, float] = (4.0, 7.0, 11.0)
    roof_pitch_deg: float = 30.0

    @property
    def sun_dir(self) -> np.ndarray:
        """Horizontal unit vector towards the sun in world axes (x east, y south)."""
        a = math.radians(self.sun_azimuth_deg)
        return np.array([math.sin(a), -math.cos(a)])


def object_colours(world: World, style: OpticalStyle) -> np.ndarray:
    """Base colour of every object (class colour, material, tone and roof shading).

    Returns:
        ``(n_objects, 3)`` float32 RGB on the 0-255 scale.
    """
    t = world.table
    base = np.array([_BASE[LandCover(c)] for c in range(len(_BASE))], dtype=np.float32)
    col = base[t.cls].copy()
    tone = t.tone[:, None]
    cls = t.cls
    # Per-object brightness variation: fields and soil vary a lot, roads and water little.
    spread = np.full(len(t), 0.06, dtype=np.float32)
    for c, s in (
        (_C.CROP_GREEN, 0.14),
        (_C.CROP_DARK, 0.12),
        (_C.CROP_RIPE, 0.10),
        (_C.CROP_HARVESTED, 0.14),
        (_C.BARE_SOIL, 0.14),
        (_C.GRASS, 0.10),
        (_C.FOREST, 0.10),
        (_C.URBAN_GROUND, 0.08),
        (_C.SEA, 0.04),
        (_C.RIVER, 0.08),
    ):
        spread[cls == c] = s
    col *= 1.0 + spread[:, None] * tone
    # Crops drift in hue as well (greener / yellower).
    crop = np.isin(cls, [_C.CROP_GREEN, _C.CROP_DARK, _C.CROP_RIPE, _C.CROP_HARVESTED])
    col[crop] += np.outer(t.tone[crop], np.array([6.0, -4.0, -6.0], dtype=np.float32))
    road = cls == _C.ROAD
    col[road & (t.kind == ROAD_MAJOR)] = np.array([84, 84, 88], dtype=np.float32)
    col[road & (t.kind == ROAD_TRACK)] = np.array([158, 140, 112], dtype=np.float32)
    conc = cls == _C.CONCRETE
    col[conc & (t.kind == CONCRETE_MARKING)] = np.array([236, 236, 230], dtype=np.float32)
    col[conc & (t.kind == CONCRETE_RUNWAY)] = np.array([160, 160, 156], dtype=np.float32)
    bld = cls == _C.BUILDING
    col[bld] = _ROOFS[np.minimum(t.kind[bld], len(_ROOFS) - 1)] * (1.0 + 0.08 * t.tone[bld])[:, None]
    # Gable roofs: Lambert shading of each half relative to flat ground.
    gable = bld & np.isfinite(t.aspect)
    if gable.any():
        p = math.radians(style.roof_pitch_deg)
        e = math.radians(style.sun_elevation_deg)
        sx, sy = style.sun_dir
        asp = t.aspect[gable].astype(np.float64)
        ndot = math.sin(p) * (np.cos(asp) * sx + np.sin(asp) * sy) * math.cos(e) + math.cos(p) * math.sin(e)
        col[gable] *= np.clip(ndot / math.sin(e), 0.35, 1.3).astype(np.float32)[:, None]
    ship = cls == _C.SHIP
    col[ship] = np.where(
        (t.kind[ship] == 3)[:, None],
        np.array([232, 232, 228], dtype=np.float32),
        _HULLS[np.minimum(t.kind[ship], 3)],
    )
    return np.clip(col, 0, 255).astype(np.float32)


def _world_xy(px_to_world: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    m = np.asarray(px_to_world, dtype=np.float64)
    cols = np.arange(w, dtype=np.float64)
    rows = np.arange(h, dtype=np.float64)
    x = (m[0, 0] * cols[None, :] + m[0, 1] * rows[:, None] + m[0, 2]).astype(np.float32)
    y = (m[1, 0] * cols[None, :] + m[1, 1] * rows[:, None] + m[1, 2]).astype(np.float32)
    return x, y


def _shadow_mask(
    world: World,
    style: OpticalStyle,
    px_to_world: np.ndarray,
    shape: tuple[int, int],
    box: tuple[float, float, float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """Cast-shadow masks: (from buildings and ships, from forest edges)."""
    e = math.radians(style.sun_elevation_deg)
    away = -style.sun_dir
    tall = world.tall
    margin = float(tall.height.max()) / math.tan(e) + 5.0 if len(tall.height) else 0.0
    idx = tall.select(box, margin)
    solid = np.zeros(shape, dtype=np.uint8)
    forest = np.zeros(shape, dtype=np.uint8)
    if len(idx) == 0:
        return solid, forest
    w2p = invert_affine(px_to_world)
    fp = tall.footprint[idx]
    off = (tall.height[idx].astype(np.float64) / math.tan(e))[:, None, None] * away[None, None, :]
    both = np.concatenate([fp, fp + off], axis=1)  # (M, 10, 2)
    pix = both @ w2p[:, :2].T + w2p[:, 2]
    is_forest = tall.kind[idx] == TALL_FOREST
    for k in range(len(idx)):
        hull = cv2.convexHull(np.round(pix[k] * 16).astype(np.int32))
        cv2.fillConvexPoly(forest if is_forest[k] else solid, hull, 1, cv2.LINE_8, 4)
    return solid, forest


def _lut(classes: list[int]) -> np.ndarray:
    lut = np.zeros(256, dtype=bool)
    lut[classes] = True
    return lut


_LUT_LAND = ~_lut([_C.SEA, _C.RIVER, _C.SHIP, _C.BUILDING])
_LUT_CROP = _lut([_C.CROP_GREEN, _C.CROP_DARK, _C.CROP_RIPE, _C.CROP_HARVESTED])
_LUT_BARE = _lut([_C.BARE_SOIL, _C.CROP_HARVESTED])
_LUT_WATER = _lut([_C.SEA, _C.RIVER])
_LUT_PAVED = _lut([_C.ROAD, _C.CONCRETE])
_LUT_RECEIVES = ~_lut([_C.BUILDING, _C.SHIP])


def render_optical(
    world: World,
    textures: dict[str, NoiseTexture],
    px_to_world: np.ndarray,
    shape: tuple[int, int],
    style: OpticalStyle = OpticalStyle(),
    *,
    colours: np.ndarray | None = None,
    seamline: Seamline | None = None,
) -> tuple[np.ndarray, LandcoverRaster]:
    """Render an optical image of the world on a grid.

    Args:
        world: the world.
        textures: noise textures by name (``fine``, ``blob``, ``mid``, ``low``; see
            :func:`saropt.synthetic.texture.make_texture_bank`).
        px_to_world: ``(2, 3)`` affine from the grid's pixels to world metres.
        shape: ``(height, width)``.
        style: sun and sensor.
        colours: precomputed :func:`object_colours` (saves time when rendering many tiles).
        seamline: optional mosaicking seamline.

    Returns:
        ``(rgb, landcover)``: ``(3, H, W)`` float32 DN on the 0-255 scale, bands first (rasterio order),
        blurred by the PSF, without noise (render a margin of a few pixels and crop it: the blur needs it),
        and the land cover drawn.

    Convention:
        Pixel x = column, y = row, 0-based, centres at integers; ``px_to_world`` maps pixels to world metres.
    """
    # Planar (band-first) arrays throughout: numpy is slow on a trailing axis of length 3.
    lc = rasterize_landcover(world, px_to_world, shape)
    if colours is None:
        colours = object_colours(world, style)
    ids, cls = lc.ids, lc.classes
    cols_t = np.ascontiguousarray(colours.T)
    rgb = [cols_t[c][ids] for c in range(3)]
    t = world.table
    x, y = _world_xy(px_to_world, shape)

    low = sample_texture(textures["low"], px_to_world, shape)
    mid = sample_texture(textures["mid"], px_to_world, shape)
    fine = sample_texture(textures["fine"], px_to_world, shape)
    blob = sample_texture(textures["blob"], px_to_world, shape)

    gain = 1.0 + 0.05 * low
    land = _LUT_LAND[cls]
    gain += land * (0.04 * mid + 0.025 * fine)

    crop = _LUT_CROP[cls]
    if crop.any():
        oid = ids[crop]
        a = t.angle[oid]
        per = np.maximum(t.period[oid], 1.0)
        # rows run along the parcel: stripes across the direction normal to it
        phase = (-x[crop] * np.sin(a) + y[crop] * np.cos(a)) / per
        gain[crop] += 0.07 * np.sin(np.float32(2.0 * np.pi) * phase) + 0.03 * mid[crop]

    forest = cls == _C.FOREST
    if forest.any():
        b = blob[forest]
        crowns = 0.62 + 0.5 / (1.0 + np.exp(-2.2 * b))  # bright crown tops, dark gaps
        gain[forest] *= crowns * (1.0 + 0.05 * fine[forest])

    bare = _LUT_BARE[cls]
    gain += bare * (0.05 * fine)

    urban = cls == _C.URBAN_GROUND
    if urban.any():
        # Gardens and lawns between paved areas.
        m = np.clip((mid[urban] - 0.1) * 1.5, 0, 1)
        lawn = m * (1.0 + 0.15 * blob[urban])
        for c, g in enumerate((96.0, 122.0, 70.0)):
            rgb[c][urban] = rgb[c][urban] * (1 - m) + np.float32(g) * lawn

    water = _LUT_WATER[cls]
    if world.coast is not None:
        sea = cls == _C.SEA
        if sea.any():
            d = world.coast.depth(x[sea].astype(np.float64), y[sea].astype(np.float64)).astype(np.float32)
            shallow = np.clip(1.0 - d / 90.0, 0, 1) ** 2
            for c, g in enumerate((86.0, 128.0, 122.0)):
                rgb[c][sea] = rgb[c][sea] * (1 - shallow) + np.float32(g) * shallow
    glint = None
    if water.any():
        gain[water] = 1.0 + 0.02 * low[water] + 0.02 * mid[water]
        glint = np.where(water, np.clip(fine - 2.3, 0, None) * np.float32(70.0), np.float32(0.0))

    paved = _LUT_PAVED[cls]
    gain[paved] = 1.0 + 0.02 * low[paved] + 0.03 * fine[paved]

    roofs = cls == _C.BUILDING
    if roofs.any():
        # Weathering, rooftop plant on flat roofs, and a parapet/eave rim around every building.
        flat = roofs & ~np.isfinite(t.aspect[ids])
        gain[roofs] = 1.0 + 0.03 * fine[roofs] + 0.03 * mid[roofs]
        gain[flat] *= np.where(blob[flat] > 2.1, 1.18, np.where(blob[flat] < -2.3, 0.8, 1.0))
        rim = roofs & (cv2.erode(roofs.astype(np.uint8), np.ones((3, 3), np.uint8)) == 0)
        gain[rim] *= 0.82

    box = (float(x.min()), float(y.min()), float(x.max()), float(y.max()))
    solid, forest_sh = _shadow_mask(world, style, px_to_world, shape, box)
    receives = _LUT_RECEIVES[cls]
    sh = (solid.astype(bool) & receives) | (forest_sh.astype(bool) & receives & ~forest)

    wseam = None
    if seamline is not None:
        side = seamline.normal[0] * x + seamline.normal[1] * y - np.float32(seamline.offset)
        wseam = np.clip(side / np.float32(1.5) + np.float32(0.5), 0, 1)  # ~1.5 m feather
        if not wseam.any():
            wseam = None

    out = np.empty((3,) + tuple(shape), dtype=np.float32)
    for c in range(3):
        band = rgb[c]
        if glint is not None:
            band += glint
        band *= gain
        band *= np.where(sh, _SHADOW[c], np.float32(1.0))
        if wseam is not None:
            band *= 1 + wseam * np.float32(seamline.gain[c] - 1)  # type: ignore[union-attr]
            band += wseam * np.float32(seamline.haze[c])  # type: ignore[union-attr]
        band += np.float32(style.haze[c])
        out[c] = cv2.GaussianBlur(band, (0, 0), style.psf_sigma_px) if style.psf_sigma_px > 0 else band
    return out, lc


def finish_optical(
    rgb: np.ndarray,
    rng: np.random.Generator,
    style: OpticalStyle,
    dtype: str = "uint8",
) -> np.ndarray:
    """Add sensor noise and quantise.

    Args:
        rgb: ``(3, H, W)`` float32 on the 0-255 scale.
        rng: generator for the noise.
        style: gives the noise level.
        dtype: ``"uint8"`` (0-255) or ``"uint16"`` (11-bit, 0-2047, like WorldView/GaoFen-2 DN).

    Returns:
        ``(3, H, W)`` quantised image; valid pixels are never 0 (0 is kept for nodata).
    """
    # Gaussian noise by inverse CDF from random bytes: 256 equiprobable levels, several times faster than
    # drawing normals and indistinguishable at a noise of a couple of DN.
    noise = _GAUSS_Q[rng.integers(0, 256, size=rgb.shape, dtype=np.uint8)]
    noise *= np.float32(style.noise_dn)
    noise += rgb
    if dtype == "uint16":
        noise *= np.float32(8.0)
        out16 = np.clip(noise, 1, 2047)
        return np.rint(out16, out=out16).astype(np.uint16)
    flat = noise.reshape(rgb.shape[0], -1)
    out8 = cv2.convertScaleAbs(flat).reshape(rgb.shape)  # rounds and saturates to 0..255 (values are >= 0)
    np.maximum(out8, 1, out=out8)
    return out8
