"""Render a synthetic world as a ground-range SAR image (about 1 m, GaoFen-3 spotlight-like).

The image is built the way a SAR sees the world, not as a noisy copy of the optical:

1. **Backscatter by land cover**: each class has a mean sigma0 in dB taken from typical C/X-band values
   (calm sea -23.5 in HH, rivers -24.5, runways and roads -21..-14, crops -12.5..-7.5, forest -7.5, roofs
   -16..-4), varied per
   object (moisture, roughness) and by ground-anchored texture (wind on the sea, tree crowns, soil moisture).
   Urban ground carries sparse bright point scatterers (cars, poles).
2. **Geometry of tall objects** (buildings, ships, forest edges) for a sensor looking from the left (near
   range at column 0, range increasing with x): *layover*, the facade and roof are imaged ``h * cot(theta)``
   towards near range, their returns adding to the ground there; *radar shadow*, the ground hidden behind an
   object, ``h * tan(theta)`` long, returns nothing but thermal noise; *double bounce*, the wall-ground
   dihedral of walls facing the sensor gives a bright line at the wall's foot, strongest for walls parallel to
   the flight direction (falls off as ``cos(aspect)^16``). Ships give the strongest dihedrals.
3. **Sensor**: a small Gaussian PSF, the cross-shaped sidelobes of very bright targets, and an additive
   thermal-noise floor (NESZ).
4. **Speckle**: fully developed, multiplicative: intensity ``~ Gamma(L, sigma0 / L)`` for ``L`` looks.

Convention:
    The SAR grid must be north-up and axis-aligned: ``px_to_world = [[p, 0, x0], [0, p, y0]]`` (pixel
    x = column = ground range, y = row = azimuth; 0-based, pixel centres at integers; world metres x east,
    y south).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from saropt.errors import InputError
from saropt.synthetic.texture import NoiseTexture, sample_texture
from saropt.synthetic.world import (
    CONCRETE_MARKING,
    CONCRETE_RUNWAY,
    ROAD_MAJOR,
    ROAD_TRACK,
    TALL_BUILDING,
    TALL_FOREST,
    TALL_SHIP_HULL,
    TALL_SHIP_TOP,
    LandCover,
    LandcoverRaster,
    World,
    invert_affine,
    rasterize_landcover,
    to_pixels,
)

__all__ = [
    "SarStyle",
    "object_sigma0_db",
    "render_sigma0",
    "speckle",
    "to_amplitude_dn",
    "to_db",
    "SIGMA0_DB",
]

_C = LandCover

#: Mean sigma0 (dB) of each land-cover class on flat ground.
SIGMA0_DB: dict[int, float] = {
    _C.NODATA: -30.0,
    _C.SEA: -23.5,
    _C.RIVER: -24.5,
    _C.CROP_GREEN: -9.0,
    _C.CROP_DARK: -7.5,
    _C.CROP_RIPE: -10.5,
    _C.CROP_HARVESTED: -12.5,
    _C.FOREST: -7.5,
    _C.BARE_SOIL: -13.0,
    _C.GRASS: -12.0,
    _C.URBAN_GROUND: -11.0,
    _C.ROAD: -17.0,
    _C.CONCRETE: -18.0,
    _C.BUILDING: -9.0,
    _C.SHIP: -4.0,
    _C.SAND: -17.0,
}
# Amplitude (dB) of the low-frequency (~150 m) and mid-frequency (~15 m) ground texture per class.
_TEX_LOW = np.full(256, 0.8, dtype=np.float32)
_TEX_MID = np.full(256, 0.6, dtype=np.float32)
_TEX_LOW[[_C.SEA, _C.RIVER]], _TEX_MID[[_C.SEA, _C.RIVER]] = 1.0, 0.4
_CROP_LIST = [_C.CROP_GREEN, _C.CROP_DARK, _C.CROP_RIPE, _C.CROP_HARVESTED]
_TEX_LOW[_CROP_LIST], _TEX_MID[_CROP_LIST] = 0.5, 0.25
# Per-object spread (dB) driven by the object's tone in [-1, 1].
_SPREAD_DB = {
    _C.CROP_GREEN: 1.5,
    _C.CROP_DARK: 1.5,
    _C.CROP_RIPE: 1.5,
    _C.CROP_HARVESTED: 2.0,
    _C.BARE_SOIL: 2.5,
    _C.GRASS: 1.5,
    _C.URBAN_GROUND: 1.5,
    _C.FOREST: 0.8,
    _C.SEA: 1.0,
    _C.RIVER: 1.0,
    _C.BUILDING: 3.0,
    _C.SAND: 1.5,
}


@dataclass(frozen=True)
class SarStyle:
    """Imaging geometry and sensor of the SAR render.

    Attributes:
        incidence_deg: incidence angle (layover ``h cot``, shadow ``h tan``).
        nesz_db: noise-equivalent sigma zero (thermal-noise floor).
        psf_sigma_px: Gaussian impulse response (pixels) applied to sigma0 before speckle.
        sidelobe_db: level of the first sidelobes of bright targets (a cross along range and azimuth).
        double_bounce_db: dihedral strength of a 10 m building wall parallel to the flight direction.
        ship_double_bounce_db: same for ship hulls.
    """

    incidence_deg: float = 35.0
    nesz_db: float = -28.0
    psf_sigma_px: float = 0.5
    sidelobe_db: float = -22.0
    double_bounce_db: float = 10.0
    ship_double_bounce_db: float = 16.0


def _db(x: float | np.ndarray) -> float | np.ndarray:
    return 10.0 ** (np.asarray(x) / 10.0)


def object_sigma0_db(world: World, style: SarStyle) -> np.ndarray:
    """Flat-ground sigma0 (dB) of each object; for roofs and decks the value of the surface seen from above.

    Returns:
        ``(n_objects,)`` float32 dB.
    """
    t = world.table
    base = np.array([SIGMA0_DB[c] for c in range(len(SIGMA0_DB))], dtype=np.float32)
    spread = np.zeros(len(SIGMA0_DB), dtype=np.float32)
    for c, s in _SPREAD_DB.items():
        spread[c] = s
    db = base[t.cls] + spread[t.cls] * t.tone
    road = t.cls == _C.ROAD
    db[road & (t.kind == ROAD_MAJOR)] = -19.0
    db[road & (t.kind == ROAD_TRACK)] = -14.0
    conc = t.cls == _C.CONCRETE
    db[conc & (t.kind == CONCRETE_RUNWAY)] = -21.0
    db[conc & (t.kind == CONCRETE_MARKING)] = -17.0
    bld = t.cls == _C.BUILDING
    # Gable roofs: the half facing the sensor (downslope towards -x) is much brighter.
    gable = bld & np.isfinite(t.aspect)
    facing = -np.cos(t.aspect[gable])
    db[gable] = -10.0 + 6.0 * facing + 1.0 * t.tone[gable]
    metal = bld & (t.kind >= 5)
    db[metal & ~gable] = -7.0 + 2.0 * t.tone[metal & ~gable]
    ship = t.cls == _C.SHIP
    db[ship & (t.kind == 3)] = 2.0  # superstructure: metal clutter
    return db.astype(np.float32)


def _check_grid(px_to_world: np.ndarray) -> float:
    m = np.asarray(px_to_world, dtype=np.float64)
    if abs(m[0, 1]) > 1e-9 or abs(m[1, 0]) > 1e-9 or m[0, 0] <= 0 or abs(m[0, 0] - m[1, 1]) > 1e-9:
        raise InputError(
            "the SAR grid must be north-up with square pixels: px_to_world = [[p,0,x0],[0,p,y0]]"
        )
    return float(m[0, 0])


def render_sigma0(
    world: World,
    textures: dict[str, NoiseTexture],
    px_to_world: np.ndarray,
    shape: tuple[int, int],
    style: SarStyle = SarStyle(),
    *,
    object_db: np.ndarray | None = None,
) -> tuple[np.ndarray, LandcoverRaster]:
    """Noise-free backscatter (linear sigma0, thermal noise included) of the world on a SAR grid.

    Args:
        world: the world.
        textures: noise textures by name (``fine``, ``blob``, ``mid``, ``low``).
        px_to_world: ``(2, 3)`` north-up grid affine (see the module convention).
        shape: ``(height, width)``. Render with a margin of ~32 pixels and crop it: the PSF and the
            sidelobes reach that far.
        style: geometry and sensor.
        object_db: precomputed :func:`object_sigma0_db`.

    Returns:
        ``(sigma0, landcover)``: ``(H, W)`` float32 linear sigma0 (mean intensity), and the land cover of the
        footprints (no layover: the class raster is the truth on the ground).

    Raises:
        InputError: if the grid is not north-up with square pixels.

    Convention:
        Pixel x = column = ground range (near range at x = 0), y = row = azimuth; 0-based, centres at
        integers.
    """
    p = _check_grid(px_to_world)
    lc = rasterize_landcover(world, px_to_world, shape)
    if object_db is None:
        object_db = object_sigma0_db(world, style)
    ids, cls = lc.ids, lc.classes
    db = object_db[ids]

    low = sample_texture(textures["low"], px_to_world, shape, offset_m=(311.0, 97.0))
    mid = sample_texture(textures["mid"], px_to_world, shape, offset_m=(53.0, 471.0))
    fine = sample_texture(textures["fine"], px_to_world, shape, offset_m=(17.0, 29.0))
    blob = sample_texture(textures["blob"], px_to_world, shape, offset_m=(233.0, 61.0))

    # Ground-anchored variation: wind on water; soil moisture and growth on land (weaker inside crops,
    # which are the homogeneous areas of a scene); crowns in forests; point scatterers in built-up ground.
    db += _TEX_LOW[cls] * low + _TEX_MID[cls] * mid
    forest = cls == _C.FOREST
    db[forest] += 1.6 * blob[forest]
    urban = cls == _C.URBAN_GROUND
    db[urban] += np.where(fine[urban] > 2.3, 14.0, 0.0)
    ground = np.power(np.float32(10.0), db * np.float32(0.1))

    theta = math.radians(style.incidence_deg)
    cot, tan = 1.0 / math.tan(theta), math.tan(theta)
    h_img, w_img = shape
    x0w, y0w = px_to_world[0][2], px_to_world[1][2]
    box = (x0w, y0w, x0w + w_img * p, y0w + h_img * p)
    tall = world.tall
    margin = float(tall.height.max()) * max(cot, tan) + 5.0 if len(tall.height) else 0.0
    idx = tall.select(box, margin)

    shadow = np.zeros(shape, dtype=np.uint8)
    wall = np.zeros(shape, dtype=np.float32)
    roof = np.zeros(shape, dtype=np.float32)
    dbl = np.zeros(shape, dtype=np.float32)
    w2p = invert_affine(px_to_world)
    if len(idx):
        _draw_prisms(world, idx, w2p, p, cot, tan, style, shadow, wall, dbl)

    # Roofs and decks: the polygons of tall objects, displaced towards near range.
    big = (box[0] - margin, box[1] - margin, box[2] + margin, box[3] + margin)
    for layer in (world.overlay, world.marine):
        sel = layer.select(big)
        sel = sel[
            (world.table.height[layer.ids[sel]] > 0)
            & np.isin(world.table.cls[layer.ids[sel]], [_C.BUILDING, _C.SHIP])
        ]
        if len(sel) == 0:
            continue
        polys = layer.polys[sel].copy()
        polys[:, :, 0] -= (world.table.height[layer.ids[sel]].astype(np.float64) * cot)[:, None]
        vals = _db(object_db[layer.ids[sel]]).astype(np.float64).tolist()
        pts = to_pixels(polys, w2p)
        for q, v in zip(pts, vals):
            cv2.fillConvexPoly(roof, q, v, cv2.LINE_8, 4)

    # Facades and roofs are cluttered (windows, balconies, vents): log-normal texture and bright points.
    fine2 = sample_texture(textures["fine"], px_to_world, shape, offset_m=(101.0, 7.0))
    clutter = np.power(np.float32(10.0), 0.35 * fine2 + np.where(fine2 > 2.2, 1.1, 0.0)).astype(np.float32)
    sigma = ground * (1 - shadow.astype(np.float32)) + (wall + roof) * clutter + dbl
    if style.psf_sigma_px > 0:
        sigma = cv2.GaussianBlur(sigma, (0, 0), style.psf_sigma_px)
    sigma = _add_sidelobes(sigma, style.sidelobe_db)
    sigma += np.float32(_db(style.nesz_db))
    return sigma.astype(np.float32), lc


def _fix(poly_px: np.ndarray) -> np.ndarray:
    return np.round(poly_px * 16).astype(np.int32)


def _draw_prisms(
    world: World,
    idx: np.ndarray,
    w2p: np.ndarray,
    p: float,
    cot: float,
    tan: float,
    style: SarStyle,
    shadow: np.ndarray,
    wall: np.ndarray,
    dbl: np.ndarray,
) -> None:
    """Radar shadow, facade layover and wall-ground dihedrals of the selected prisms."""
    tall = world.tall
    fp = tall.footprint[idx] @ w2p[:, :2].T + w2p[:, 2]  # (M, 5, 2) pixels
    hs = tall.height[idx].astype(np.float64)
    kinds = tall.kind[idx]
    tones = world.table.tone[tall.obj[idx]].astype(np.float64)
    forest = kinds == TALL_FOREST
    building = kinds == TALL_BUILDING
    hull = kinds == TALL_SHIP_HULL
    top = kinds == TALL_SHIP_TOP
    lay = hs * cot / p
    sha = hs * tan / p
    # Facade (layover) backscatter; the canopy edge of a forest lays over only part of its height.
    wall_db = np.select(
        [building, hull, top],
        [-6.0 + 2.0 * tones + 1.5 * np.minimum(hs / 30.0, 1.0), 0.0, 4.0],
        -8.0 + 1.0 * tones,
    )
    wall_dx = np.where(forest, -0.6 * lay, -lay)
    dbl_db = np.select(
        [building, hull, top],
        [
            style.double_bounce_db + 10.0 * np.log10(np.maximum(hs, 3.0) / 10.0),
            style.ship_double_bounce_db + 10.0 * np.log10(np.maximum(hs, 2.0) / 5.0),
            np.full_like(hs, style.ship_double_bounce_db),
        ],
        np.nan,
    )
    zeros = np.zeros_like(hs)
    sh_pts = _fix(np.concatenate([fp, fp + np.stack([sha, zeros], axis=1)[:, None, :]], axis=1))
    wl_pts = _fix(np.concatenate([fp, fp + np.stack([wall_dx, zeros], axis=1)[:, None, :]], axis=1))
    fp_fix = _fix(fp)
    wall_vals = _db(wall_db).tolist()
    is_forest = forest.tolist()
    for k in range(len(idx)):
        cv2.fillConvexPoly(shadow, cv2.convexHull(sh_pts[k]), 1, cv2.LINE_8, 4)
        cv2.fillConvexPoly(wall, cv2.convexHull(wl_pts[k]), wall_vals[k], cv2.LINE_8, 4)
        if is_forest[k]:
            # Canopy: bright band in front, shadow behind, but the forest itself keeps its own return.
            cv2.fillConvexPoly(shadow, fp_fix[k], 0, cv2.LINE_8, 4)
            cv2.fillConvexPoly(wall, fp_fix[k], 0.0, cv2.LINE_8, 4)

    # Dihedrals: the foot of every wall whose outward normal points to the sensor (-x), cos^16 of the aspect.
    a = fp
    b = np.roll(fp, -1, axis=1)
    d = b - a
    ln = np.hypot(d[..., 0], d[..., 1])
    area = 0.5 * np.sum(a[..., 0] * b[..., 1] - b[..., 0] * a[..., 1], axis=1)
    sign = np.where(area > 0, 1.0, -1.0)[:, None]
    nx = sign * d[..., 1] / np.maximum(ln, 1e-9)  # outward normal x component
    c = -nx
    with np.errstate(divide="ignore", invalid="ignore"):
        val_db = dbl_db[:, None] + 160.0 * np.log10(np.maximum(c, 1e-6))
    ok = (ln > 1e-6) & (c > 0.05) & np.isfinite(val_db) & (val_db > -30.0)
    if not ok.any():
        return
    ma, ea = np.nonzero(ok)
    p1 = _fix(a[ma, ea]).tolist()
    p2 = _fix(b[ma, ea]).tolist()
    vals = _db(val_db[ma, ea]).tolist()
    for q1, q2, v in zip(p1, p2, vals):
        cv2.line(dbl, q1, q2, v, 1, cv2.LINE_8, 4)


def _add_sidelobes(sigma: np.ndarray, level_db: float) -> np.ndarray:
    """Cross-shaped sidelobes (along range and azimuth) of targets brighter than +8 dB."""
    bright = np.maximum(sigma - np.float32(_db(8.0)), 0).astype(np.float32)
    rows = np.flatnonzero(bright.any(axis=1))
    if len(rows) == 0:
        return sigma
    cols = np.flatnonzero(bright.any(axis=0))
    r = 16
    k = np.arange(-r, r + 1, dtype=np.float32)
    prof = np.where(k == 0, 0.0, float(_db(level_db)) / np.maximum(np.abs(k), 1) ** 2).astype(np.float32)
    out = sigma.copy()
    # Only the rows (columns) holding bright pixels carry range (azimuth) sidelobes.
    out[rows] += cv2.filter2D(bright[rows], -1, prof[None, :], borderType=cv2.BORDER_CONSTANT)
    out[:, cols] += cv2.filter2D(
        np.ascontiguousarray(bright[:, cols]), -1, prof[:, None], borderType=cv2.BORDER_CONSTANT
    )
    return out


def speckle(
    sigma0: np.ndarray,
    looks: float,
    rng: np.random.Generator,
    correlation_px: float = 0.0,
) -> np.ndarray:
    """Fully developed multiplicative speckle: ``I = sigma0 * G`` with ``G ~ Gamma(L, 1/L)``.

    With ``correlation_px > 0`` and an integer ``L`` (<= 16) each look is the squared modulus of complex
    Gaussian noise filtered by a Gaussian impulse response of that width, so speckle grains span a few pixels
    as in real, slightly oversampled SAR products; each pixel's distribution is still exactly
    ``Gamma(L, 1/L)``. Otherwise pixels are independent.

    Args:
        sigma0: ``(H, W)`` mean intensity (linear).
        looks: equivalent number of looks ``L`` (> 0; 1 = single look, exponential intensity).
        rng: generator.
        correlation_px: standard deviation of the impulse response in pixels (0 = independent pixels).

    Returns:
        ``(H, W)`` float32 intensity; ``mean = sigma0`` and ``var = sigma0**2 / L``.

    Raises:
        InputError: if ``looks <= 0``.
    """
    if not looks > 0:
        raise InputError(f"looks must be positive, got {looks}")
    n_looks = int(round(looks))
    if correlation_px <= 0 or abs(looks - n_looks) > 1e-9 or n_looks > 16:
        g = rng.standard_gamma(float(looks), size=sigma0.shape, dtype=np.float32)
        return (sigma0 * g * np.float32(1.0 / looks)).astype(np.float32)
    h, w = sigma0.shape
    rad = int(math.ceil(3 * correlation_px))
    k = cv2.getGaussianKernel(2 * rad + 1, correlation_px, cv2.CV_32F).ravel()
    energy = float(np.sum(k.astype(np.float64) ** 2)) ** 2  # of the separable 2-D kernel
    acc = np.zeros((h, w), dtype=np.float32)
    for _ in range(n_looks):
        for _part in range(2):  # real and imaginary parts
            z = rng.standard_normal((h + 2 * rad, w + 2 * rad), dtype=np.float32)
            z = cv2.sepFilter2D(z, -1, k, k)[rad : rad + h, rad : rad + w]
            acc += z * z
    return (sigma0 * acc * np.float32(1.0 / (2.0 * energy * n_looks))).astype(np.float32)


def to_amplitude_dn(intensity: np.ndarray, nodata: np.ndarray | None, scale: float) -> np.ndarray:
    """Intensity to uint16 amplitude DN ``round(scale * sqrt(I))`` clipped to 1..65535 (0 = nodata)."""
    dn = np.clip(np.round(np.sqrt(intensity) * np.float32(scale)), 1, 65535).astype(np.uint16)
    if nodata is not None:
        dn[nodata] = 0
    return dn


def to_db(intensity: np.ndarray, nodata: np.ndarray | None) -> np.ndarray:
    """Intensity to float32 dB (``10 log10 I``) with NaN nodata."""
    out = (10.0 * np.log10(np.maximum(intensity, 1e-10))).astype(np.float32)
    if nodata is not None:
        out[nodata] = np.nan
    return out
