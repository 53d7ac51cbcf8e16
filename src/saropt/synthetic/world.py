"""The synthetic world model: land-cover classes, objects as vector geometry, and drawing it on any grid.

A world (built by :func:`saropt.synthetic.landcover.build_world`) is never a raster: it is a set of convex
polygons in world metres, each painting an object id, plus a few big simple polygons (sea, beach), plus prisms
(footprint and height) of tall objects. Any pixel grid (the SAR grid, the optical grid, a tile of either, a
coarse mask) is produced by drawing the polygons that fall into it with OpenCV, in a fixed order. Memory is
proportional to the number of objects, not to the area, and two grids related by a known affine see exactly
the same ground.

Object ids index an :class:`ObjectTable` of per-object attributes (class, height, orientation, tone...) that
the renderers (:mod:`saropt.synthetic.optical`, :mod:`saropt.synthetic.sar`) look up per pixel.

Convention:
    World coordinates are metres, x to the east, y to the south (image-like, so that a north-up grid with
    pixel size p has ``px_to_world = [[p, 0, x0], [0, p, y0]]``). A grid is any 2x3 affine ``px_to_world``
    from pixel coordinates (x=col, y=row, 0-based, pixel centres at integers) to world metres. Polygons are
    filled at OpenCV's pixel-centre convention with 4 sub-pixel bits: a pixel gets the object covering its
    centre.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import cv2
import numpy as np

__all__ = [
    "LandCover",
    "CROPS",
    "ObjectTable",
    "ConvexLayer",
    "Extrusions",
    "Coast",
    "World",
    "LandcoverRaster",
    "rasterize_ids",
    "rasterize_landcover",
    "invert_affine",
    "to_pixels",
    "fill_convex",
    "fill_polygon",
    "pad_polygon",
    "TALL_BUILDING",
    "TALL_SHIP_HULL",
    "TALL_SHIP_TOP",
    "TALL_FOREST",
]

SHIFT_BITS = 4  # sub-pixel bits for OpenCV polygon filling
MAX_VERTICES = 8  # vertices per polygon in a ConvexLayer
_ONE = float(1 << SHIFT_BITS)


class LandCover(IntEnum):
    """Land-cover classes (the values written to class rasters)."""

    NODATA = 0
    SEA = 1
    RIVER = 2
    CROP_GREEN = 3
    CROP_DARK = 4
    CROP_RIPE = 5
    CROP_HARVESTED = 6
    FOREST = 7
    BARE_SOIL = 8
    GRASS = 9
    URBAN_GROUND = 10
    ROAD = 11
    CONCRETE = 12
    BUILDING = 13
    SHIP = 14
    SAND = 15


N_CLASSES = 16
CROPS = (LandCover.CROP_GREEN, LandCover.CROP_DARK, LandCover.CROP_RIPE, LandCover.CROP_HARVESTED)

# Kinds of tall objects (Extrusions.kind).
TALL_BUILDING = 0
TALL_SHIP_HULL = 1
TALL_SHIP_TOP = 2
TALL_FOREST = 3

# Road kinds (ObjectTable.kind for class ROAD / CONCRETE).
ROAD_MAJOR, ROAD_MINOR, ROAD_TRACK = 0, 1, 2
CONCRETE_RUNWAY, CONCRETE_TAXIWAY, CONCRETE_MARKING = 0, 1, 2


@dataclass(frozen=True, eq=False)
class ObjectTable:
    """Per-object attributes, indexed by object id (id 0 is the background: meadow).

    Attributes:
        cls: ``(n,)`` uint8 :class:`LandCover` value.
        height: ``(n,)`` float32 height above ground in metres (buildings, ships, forest canopy).
        tone: ``(n,)`` float32 in [-1, 1], a per-object random brightness/moisture variation.
        angle: ``(n,)`` float32 orientation in radians (crop rows, building long axis, ship heading).
        period: ``(n,)`` float32 crop-row period in metres (0 where not a field).
        kind: ``(n,)`` uint8 material variant (road type, roof material, hull colour...).
        aspect: ``(n,)`` float32 downslope direction of a roof half in radians, NaN for flat surfaces.
    """

    cls: np.ndarray
    height: np.ndarray
    tone: np.ndarray
    angle: np.ndarray
    period: np.ndarray
    kind: np.ndarray
    aspect: np.ndarray

    def __len__(self) -> int:
        return int(self.cls.shape[0])


@dataclass(frozen=True, eq=False)
class ConvexLayer:
    """Convex polygons drawn in order (later ones paint over earlier ones).

    Attributes:
        polys: ``(K, 8, 2)`` float64 vertices in world metres (shorter polygons repeat their last vertex).
        ids: ``(K,)`` int32 object id painted by each polygon.
        bbox: ``(K, 4)`` float64 ``(xmin, ymin, xmax, ymax)``.
    """

    polys: np.ndarray
    ids: np.ndarray
    bbox: np.ndarray

    @staticmethod
    def build(polys: list[np.ndarray], ids: list[int]) -> ConvexLayer:
        if not polys:
            p = np.zeros((0, MAX_VERTICES, 2))
        else:
            p = np.stack([pad_polygon(q, MAX_VERTICES) for q in polys])
        bbox = np.concatenate([p.min(axis=1), p.max(axis=1)], axis=1) if len(p) else np.zeros((0, 4))
        return ConvexLayer(p, np.asarray(ids, dtype=np.int32), bbox)

    def select(self, box: tuple[float, float, float, float]) -> np.ndarray:
        """Indices of polygons whose bounding box meets ``box`` (world metres), in drawing order."""
        x0, y0, x1, y1 = box
        b = self.bbox
        return np.flatnonzero((b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0))


@dataclass(frozen=True, eq=False)
class Extrusions:
    """Tall objects as vertical prisms: a convex footprint and a height.

    Attributes:
        footprint: ``(M, 5, 2)`` float64 world metres.
        height: ``(M,)`` float32 metres.
        kind: ``(M,)`` uint8: ``TALL_BUILDING``, ``TALL_SHIP_HULL``, ``TALL_SHIP_TOP`` or ``TALL_FOREST``.
        obj: ``(M,)`` int32 object id (for attributes).
        bbox: ``(M, 4)`` float64 footprint bounds.
    """

    footprint: np.ndarray
    height: np.ndarray
    kind: np.ndarray
    obj: np.ndarray
    bbox: np.ndarray

    def select(self, box: tuple[float, float, float, float], margin: float) -> np.ndarray:
        """Indices whose footprint bounds, grown by ``margin`` metres, meet ``box``."""
        x0, y0, x1, y1 = box
        b = self.bbox
        return np.flatnonzero(
            (b[:, 0] - margin <= x1)
            & (b[:, 2] + margin >= x0)
            & (b[:, 1] - margin <= y1)
            & (b[:, 3] + margin >= y0)
        )


@dataclass(frozen=True)
class Coast:
    """A wavy coastline: the sea is where ``depth(x, y) > 0``.

    ``depth = n . p - offset - sum_k amp_k sin(2 pi (t . p) / wavelength_k + phase_k)`` with unit normal ``n``
    (pointing out to sea) and tangent ``t``; it approximates the distance to the coast in metres.
    """

    normal: tuple[float, float]
    offset: float
    amps: tuple[float, ...]
    wavelengths: tuple[float, ...]
    phases: tuple[float, ...]

    @property
    def tangent(self) -> tuple[float, float]:
        return (-self.normal[1], self.normal[0])

    def wave(self, t: np.ndarray) -> np.ndarray:
        out = np.zeros_like(t, dtype=np.float64)
        for a, w, ph in zip(self.amps, self.wavelengths, self.phases):
            out += a * np.sin(2 * np.pi * t / w + ph)
        return out

    def depth(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Approximate signed distance into the sea (metres; negative on land)."""
        nx, ny = self.normal
        tx, ty = self.tangent
        return nx * x + ny * y - self.offset - self.wave(tx * x + ty * y)


@dataclass(frozen=True, eq=False)
class World:
    """A generated world.

    Attributes:
        seed: generator seed.
        extent: ``(xmin, ymin, xmax, ymax)`` in metres; every grid drawn should lie inside it.
        table: per-object attributes.
        parcels: land parcels, drawn first.
        sand: beach polygon ``(N, 2)`` or ``None``; ``sand_id`` its object id.
        sea: sea polygon ``(N, 2)`` or ``None``; ``sea_id`` its object id.
        overlay: river, roads, airfield, buildings, drawn after the beach and before the sea (so roads end at
            the coast).
        marine: ships and boats, drawn last.
        tall: prisms for shadows and layover.
        corners: ``(P, 2)`` distinctive ground points (road crossings, parcel and building corners) in metres.
        coast: the coastline model, or ``None`` when there is no sea.
        meta: description (towns, airfield, ships, river) for ``truth.json``.
    """

    seed: int
    extent: tuple[float, float, float, float]
    table: ObjectTable
    parcels: ConvexLayer
    sand: np.ndarray | None
    sand_id: int
    sea: np.ndarray | None
    sea_id: int
    overlay: ConvexLayer
    marine: ConvexLayer
    tall: Extrusions
    corners: np.ndarray
    coast: Coast | None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class LandcoverRaster:
    """Land cover drawn on a grid.

    Attributes:
        ids: ``(H, W)`` int32 object ids.
        classes: ``(H, W)`` uint8 :class:`LandCover`.
        height: ``(H, W)`` float32 object height in metres (0 on flat ground).
    """

    ids: np.ndarray
    classes: np.ndarray
    height: np.ndarray


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    full = np.vstack([np.asarray(m, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def pad_polygon(q: np.ndarray, n: int) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64).reshape(-1, 2)
    if len(q) > n:
        raise ValueError(f"convex polygons need at most {n} vertices, got {len(q)}")
    return np.vstack([q, np.repeat(q[-1:], n - len(q), axis=0)])


def grid_box(px_to_world: np.ndarray, shape: tuple[int, int], margin_px: float = 2.0) -> tuple[float, ...]:
    h, w = shape
    c = np.array(
        [
            [-margin_px, -margin_px],
            [w + margin_px, -margin_px],
            [-margin_px, h + margin_px],
            [w + margin_px, h + margin_px],
        ]
    )
    m = np.asarray(px_to_world, dtype=np.float64)
    p = c @ m[:, :2].T + m[:, 2]
    return (float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max()))


def to_pixels(points: np.ndarray, world_to_px: np.ndarray) -> np.ndarray:
    """World metres -> fixed-point pixel coordinates for OpenCV drawing (``shift`` = 4 bits)."""
    p = points @ world_to_px[:, :2].T + world_to_px[:, 2]
    return np.round(p * _ONE).astype(np.int32)


def fill_convex(img: np.ndarray, polys_world: np.ndarray, values: list[Any], world_to_px: np.ndarray) -> None:
    """Fill convex polygons (world metres) into ``img`` in order, one value each."""
    if len(polys_world) == 0:
        return
    pts = to_pixels(polys_world, world_to_px)
    for p, v in zip(pts, values):
        cv2.fillConvexPoly(img, p, v, cv2.LINE_8, SHIFT_BITS)


def fill_polygon(img: np.ndarray, poly_world: np.ndarray, value: Any, world_to_px: np.ndarray) -> None:
    """Fill one simple (possibly non-convex) polygon given in world metres."""
    cv2.fillPoly(img, [to_pixels(poly_world, world_to_px)], value, cv2.LINE_8, SHIFT_BITS)


def rasterize_ids(world: World, px_to_world: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Draw the world's object ids on a grid.

    Args:
        world: the world.
        px_to_world: ``(2, 3)`` affine from the grid's pixels to world metres.
        shape: ``(height, width)`` of the grid.

    Returns:
        ``(height, width)`` int32 object ids (0 = meadow background).

    Convention:
        Pixel x = column, y = row, 0-based, centres at integers; a pixel gets the object covering its centre.
    """
    h, w = int(shape[0]), int(shape[1])
    img = np.zeros((h, w), dtype=np.int32)
    w2p = invert_affine(px_to_world)
    box = grid_box(px_to_world, shape)
    idx = world.parcels.select(box)
    fill_convex(img, world.parcels.polys[idx], world.parcels.ids[idx].tolist(), w2p)
    if world.sand is not None:
        fill_polygon(img, world.sand, world.sand_id, w2p)
    idx = world.overlay.select(box)
    fill_convex(img, world.overlay.polys[idx], world.overlay.ids[idx].tolist(), w2p)
    if world.sea is not None:
        fill_polygon(img, world.sea, world.sea_id, w2p)
    idx = world.marine.select(box)
    fill_convex(img, world.marine.polys[idx], world.marine.ids[idx].tolist(), w2p)
    return img


def rasterize_landcover(world: World, px_to_world: np.ndarray, shape: tuple[int, int]) -> LandcoverRaster:
    """Object ids, classes and heights on a grid (see :func:`rasterize_ids`).

    Convention:
        Pixel x = column, y = row, 0-based, centres at integers; ``px_to_world`` maps pixels to world metres.
    """
    ids = rasterize_ids(world, px_to_world, shape)
    return LandcoverRaster(ids, world.table.cls[ids], world.table.height[ids])
