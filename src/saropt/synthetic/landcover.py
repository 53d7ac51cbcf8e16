"""A procedural world: land cover, heights and objects, described as vector geometry in metres.

The world is generated once from a seed as *geometry* (convex polygons in world metres with an object id
each), never as a raster: any pixel grid (the SAR grid, the optical grid, a tile of either, a coarse mask) is
produced by drawing the polygons that fall into it with OpenCV. This keeps memory proportional to the number
of objects, not to the area, so 20 km worlds cost the same per pixel as 1.5 km ones, and two grids related by
a known affine see exactly the same ground.

What is in a world:

* open **sea** on one side behind a wavy coastline with a sand beach, a meandering **river** into it;
* a road **grid** (rotated, irregular spacing, major roads, missing minor roads, dirt tracks) whose cells are
  split into **field** parcels of four crop types, **forest**, **bare soil** and meadow **grass**;
* **towns**: urban cells subdivided by streets into blocks of houses (gable roofs), apartment slabs,
  downtown towers and industrial sheds, each building a rectangle with a height; farmsteads in the country;
* an **airfield** (runway with markings, taxiway, apron, hangars) in some worlds;
* **ships** on the sea (pointed hull plus superstructure, with heights) and boats on the river.

The model (classes, object table, polygons, rasterising) is in :mod:`saropt.synthetic.world`; the parts
(buildings, airfield, ships) in :mod:`saropt.synthetic._builders`.

Convention:
    World coordinates are metres, x to the east, y to the south (image-like, so that a north-up grid with
    pixel size p has ``px_to_world = [[p, 0, x0], [0, p, y0]]``). A grid is any 2x3 affine ``px_to_world``
    from pixel coordinates (x=col, y=row, 0-based, pixel centres at integers) to world metres.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from saropt.errors import InputError
from saropt.synthetic._builders import (
    Building,
    TableBuilder,
    Tall,
    WaterMask,
    add_airfield,
    add_river_boats,
    add_ships,
    disc,
    emit_building,
    fill_block,
    overlap,
    rect_uv,
    rot,
    segment_quad,
)
from saropt.synthetic.world import (
    CROPS,
    MAX_VERTICES,
    ROAD_MAJOR,
    ROAD_MINOR,
    ROAD_TRACK,
    TALL_FOREST,
    Coast,
    ConvexLayer,
    Extrusions,
    LandCover,
    LandcoverRaster,
    World,
    fill_convex,
    fill_polygon,
    pad_polygon,
    rasterize_ids,
    rasterize_landcover,
)

log = logging.getLogger(__name__)

__all__ = ["build_world", "LandCover", "World", "LandcoverRaster", "rasterize_ids", "rasterize_landcover"]


def build_world(
    seed: int,
    extent: tuple[float, float, float, float],
    focus: tuple[float, float, float, float],
    *,
    sea_fraction: float = 0.2,
    airfield: bool | None = None,
) -> World:
    """Generate a world.

    Args:
        seed: seed; the world is a pure function of (seed, extent, focus, sea_fraction, airfield).
        extent: ``(xmin, ymin, xmax, ymax)`` metres to fill with objects.
        focus: the region that matters most (the SAR footprint): the sea covers ``sea_fraction`` of it and the
            first town lies in it.
        sea_fraction: fraction of ``focus`` covered by open sea, in [0, 0.9].
        airfield: force an airfield on or off; ``None`` draws it at random (when the focus is big enough).

    Returns:
        The world.

    Raises:
        InputError: for an empty extent or a sea fraction outside [0, 0.9].

    Convention:
        World metres, x east, y south.
    """
    x0, y0, x1, y1 = extent
    if not (x1 > x0 and y1 > y0):
        raise InputError(f"world extent must be non-empty, got {extent}")
    if not 0.0 <= sea_fraction <= 0.9:
        raise InputError(f"sea_fraction must be in [0, 0.9], got {sea_fraction}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5A12]))
    table = TableBuilder()
    parcels: list[np.ndarray] = []
    parcel_ids: list[int] = []
    overlay: list[np.ndarray] = []
    overlay_ids: list[int] = []
    tall: list[Tall] = []
    corners: list[np.ndarray] = []
    meta: dict[str, Any] = {}
    fx0, fy0, fx1, fy1 = focus
    fsize = min(fx1 - fx0, fy1 - fy0)

    # --- sea and coast
    water = WaterMask(extent)
    coast = None
    sea_poly = sand_poly = None
    sea_id = sand_id = 0
    if sea_fraction > 0:
        coast = _coast(rng, focus, sea_fraction)
        sea_poly, sand_poly = _coast_polygons(coast, extent, rng)
        sea_id = table.add(LandCover.SEA, tone=float(rng.uniform(-1, 1)))
        sand_id = table.add(LandCover.SAND, tone=float(rng.uniform(-1, 1))) if sand_poly is not None else 0
        fill_polygon(water.sea, sea_poly, 1, water.w2p)
        meta["coast"] = {"normal": list(coast.normal), "offset_m": coast.offset}

    # --- river
    river = _river(rng, extent, coast, focus) if rng.random() < 0.8 else None
    if river is not None:
        rpts, rwidth = river
        rid = table.add(LandCover.RIVER, tone=float(rng.uniform(-1, 1)))
        for a, b in zip(rpts[:-1], rpts[1:]):
            overlay.append(segment_quad(a, b, rwidth, 0.0))
            overlay_ids.append(rid)
        for p in rpts[1:-1]:
            overlay.append(disc(p, rwidth / 2))
            overlay_ids.append(rid)
        fill_convex(
            water.river,
            np.stack([pad_polygon(q, MAX_VERTICES) for q in overlay]),
            [1] * len(overlay),
            water.w2p,
        )
        meta["river_width_m"] = rwidth

    # --- grid frame
    phi = float(rng.uniform(-0.8, 0.8))
    R = rot(phi)
    origin = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    ext_corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    uv = (ext_corners - origin) @ R  # world -> uv: R^T (p - o)
    umin, vmin = uv.min(axis=0) - 150
    umax, vmax = uv.max(axis=0) + 150

    def to_world(pts_uv: np.ndarray) -> np.ndarray:
        return pts_uv @ R.T + origin

    def lines(lo: float, hi: float, base: float) -> np.ndarray:
        out = [lo + rng.uniform(0, base)]
        while out[-1] < hi:
            out.append(out[-1] + base * rng.uniform(0.7, 1.3))
        return np.array(out)

    U = lines(umin, umax, rng.uniform(200, 320))
    V = lines(vmin, vmax, rng.uniform(170, 290))
    ku, kv = int(rng.integers(3, 6)), int(rng.integers(3, 6))
    major_u = (np.arange(len(U)) % ku) == rng.integers(0, ku)
    major_v = (np.arange(len(V)) % kv) == rng.integers(0, kv)

    # --- towns
    area_km2 = (x1 - x0) * (y1 - y0) / 1e6
    n_towns = max(1, int(round(area_km2 / 5.0)))
    towns: list[tuple[np.ndarray, float]] = []
    for k in range(n_towns * 4):
        if len(towns) >= n_towns:
            break
        if k == 0 or not towns:
            c = np.array([(fx0 + fx1) / 2, (fy0 + fy1) / 2]) + rng.uniform(-0.25, 0.25, 2) * fsize
            r = float(np.clip(rng.uniform(0.2, 0.32) * fsize, 230, 600))
        else:
            c = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
            r = float(rng.uniform(150, 550))
        if coast is not None and coast.depth(np.array(c[0]), np.array(c[1])) > -0.3 * r:
            if k == 0:  # move the first town inland
                n = np.array(coast.normal)
                c = c - n * (coast.depth(np.array(c[0]), np.array(c[1])) + 0.5 * r)
            else:
                continue
        towns.append((c, r))
    meta["towns"] = [{"centre_m": [float(c[0]), float(c[1])], "radius_m": r} for c, r in towns]
    town_c = np.array([c for c, _ in towns])
    town_r = np.array([r for _, r in towns])

    # --- forest regions: smooth random field from a few plane waves
    fk = rng.uniform(2 * np.pi / 3000, 2 * np.pi / 900, 4)
    fa = rng.uniform(0, 2 * np.pi, 4)
    fph = rng.uniform(0, 2 * np.pi, 4)

    def forest_field(p: np.ndarray) -> float:
        return float(
            sum(np.sin(k * (p[0] * math.cos(a) + p[1] * math.sin(a)) + ph) for k, a, ph in zip(fk, fa, fph))
        )

    buildings: list[Building] = []
    n_cells_u, n_cells_v = len(U) - 1, len(V) - 1
    urban_cell = np.zeros((n_cells_u, n_cells_v), dtype=bool)

    # --- cells: parcels, urban blocks
    for i in range(n_cells_u):
        for j in range(n_cells_v):
            u0, u1, v0, v1 = U[i], U[i + 1], V[j], V[j + 1]
            cw = to_world(np.array([[(u0 + u1) / 2, (v0 + v1) / 2]]))[0]
            if water.in_sea(cw) and coast is not None:
                if coast.depth(np.array(cw[0]), np.array(cw[1])) > 0.75 * max(u1 - u0, v1 - v0):
                    continue
            d = np.hypot(*(town_c - cw).T) / town_r
            urb = float(np.max(1.0 - d))
            if urb > 0.2 * rng.random():
                urban_cell[i, j] = True
                _urban_cell(
                    rng,
                    table,
                    u0,
                    v0,
                    u1,
                    v1,
                    urb,
                    parcels,
                    parcel_ids,
                    overlay,
                    overlay_ids,
                    buildings,
                    to_world,
                    corners,
                )
            else:
                _rural_cell(
                    rng,
                    table,
                    u0,
                    v0,
                    u1,
                    v1,
                    forest_field(cw),
                    parcels,
                    parcel_ids,
                    tall,
                    buildings,
                    to_world,
                    phi,
                )

    # --- roads along the grid lines
    def road(a_uv: np.ndarray, b_uv: np.ndarray, major: bool, urban: bool) -> None:
        if major:
            kind, width = ROAD_MAJOR, 12.0
        elif urban or rng.random() < 0.7:
            kind, width = ROAD_MINOR, 7.0
        else:
            kind, width = ROAD_TRACK, 4.0
        if not major and not urban and rng.random() < 0.2:
            return
        a, b = to_world(np.stack([a_uv, b_uv]))
        if water.in_sea(np.stack([a, b])).all():
            return  # roads that reach the coast are cut there by the sea polygon
        rid = table.add(LandCover.ROAD, tone=float(rng.uniform(-1, 1)), kind=kind)
        overlay.append(segment_quad(a, b, width, width / 2))
        overlay_ids.append(rid)
        ends_uv.extend([tuple(np.round(a_uv, 3)), tuple(np.round(b_uv, 3))])

    ends_uv: list[tuple[float, ...]] = []
    for i, u in enumerate(U):
        for j in range(n_cells_v):
            urban = bool(urban_cell[min(i, n_cells_u - 1), j] or urban_cell[max(i - 1, 0), j])
            road(np.array([u, V[j]]), np.array([u, V[j + 1]]), bool(major_u[i]), urban)
    for j, v in enumerate(V):
        for i in range(n_cells_u):
            urban = bool(urban_cell[i, min(j, n_cells_v - 1)] or urban_cell[i, max(j - 1, 0)])
            road(np.array([U[i], v]), np.array([U[i + 1], v]), bool(major_v[j]), urban)
    if ends_uv:
        uniq, counts = np.unique(np.array(ends_uv), axis=0, return_counts=True)
        crossings = uniq[counts >= 3]
        if len(crossings):
            corners.append(to_world(crossings))

    # --- airfield
    want_airfield = (rng.random() < 0.65) if airfield is None else airfield
    zone_uv = None
    if want_airfield and fsize >= 900:
        zone_uv = add_airfield(
            rng,
            table,
            U,
            V,
            focus,
            to_world,
            R,
            origin,
            water,
            town_c,
            town_r,
            overlay,
            overlay_ids,
            buildings,
            meta,
        )

    # --- buildings: drop those in or near water or inside the airfield zone, then draw
    for b in buildings:
        if zone_uv is not None:
            zu0, zv0, zu1, zv1 = zone_uv
            cu, cv = b.fp_uv.mean(axis=0)
            if zu0 <= cu <= zu1 and zv0 <= cv <= zv1 and b.material != 5:
                continue
        fp = to_world(b.fp_uv)
        if water.water(np.vstack([fp, fp.mean(axis=0, keepdims=True)]), buffer_m=6.0).any():
            continue
        emit_building(rng, table, b, fp, phi, overlay, overlay_ids, tall)
        corners.append(fp)

    # --- ships
    marine: list[np.ndarray] = []
    marine_ids: list[int] = []
    if coast is not None:
        add_ships(rng, table, coast, water, extent, focus, marine, marine_ids, tall, meta)
    if river is not None:
        add_river_boats(rng, table, river[0], river[1], water, marine, marine_ids, tall, meta)

    # --- forest canopies standing in water (cells cut by the coast or the river) are flattened
    keep_tall = []
    for t in tall:
        if t[2] == TALL_FOREST:
            fp = t[0]
            probe = np.vstack([fp, (fp + np.roll(fp, -1, axis=0)) / 2, fp.mean(axis=0, keepdims=True)])
            if water.water(probe).any():
                continue
        keep_tall.append(t)
    tall = keep_tall

    # --- parcel corners (field boundaries meet roads): a sample of them
    if parcels:
        pc = np.stack([pad_polygon(p, MAX_VERTICES)[:4] for p in parcels]).reshape(-1, 2)
        corners.append(np.unique(np.round(pc, 2), axis=0))

    allc = np.vstack(corners) if corners else np.zeros((0, 2))
    if len(allc):
        allc = allc[~water.water(allc, buffer_m=8.0)]

    tall_arr = _freeze_tall(tall)
    world = World(
        seed=int(seed),
        extent=(float(x0), float(y0), float(x1), float(y1)),
        table=table.freeze(),
        parcels=ConvexLayer.build(parcels, parcel_ids),
        sand=sand_poly,
        sand_id=sand_id,
        sea=sea_poly,
        sea_id=sea_id,
        overlay=ConvexLayer.build(overlay, overlay_ids),
        marine=ConvexLayer.build(marine, marine_ids),
        tall=tall_arr,
        corners=allc,
        coast=coast,
        meta=meta,
    )
    log.debug(
        "world: %d objects, %d parcels, %d overlay polygons, %d tall objects",
        len(world.table),
        len(world.parcels.ids),
        len(world.overlay.ids),
        len(tall_arr.height),
    )
    return world


def _freeze_tall(tall: list[Tall]) -> Extrusions:
    if not tall:
        z = np.zeros((0, 5, 2))
        return Extrusions(
            z, np.zeros(0, np.float32), np.zeros(0, np.uint8), np.zeros(0, np.int32), np.zeros((0, 4))
        )
    fp = np.stack([pad_polygon(t[0], 5) for t in tall])
    bbox = np.concatenate([fp.min(axis=1), fp.max(axis=1)], axis=1)
    return Extrusions(
        fp,
        np.array([t[1] for t in tall], dtype=np.float32),
        np.array([t[2] for t in tall], dtype=np.uint8),
        np.array([t[3] for t in tall], dtype=np.int32),
        bbox,
    )


def _coast(rng: np.random.Generator, focus: tuple[float, float, float, float], sea_fraction: float) -> Coast:
    fx0, fy0, fx1, fy1 = focus
    d = max(fx1 - fx0, fy1 - fy0)
    psi = rng.uniform(0, 2 * np.pi)
    normal = (math.cos(psi), math.sin(psi))
    amps = (0.035 * d * rng.uniform(0.5, 1.0), 0.015 * d * rng.uniform(0.5, 1.0), 0.005 * d)
    wls = (
        1.3 * d * rng.uniform(0.8, 1.2),
        0.45 * d * rng.uniform(0.8, 1.2),
        0.13 * d * rng.uniform(0.8, 1.2),
    )
    phases = tuple(float(x) for x in rng.uniform(0, 2 * np.pi, 3))
    provisional = Coast(normal, 0.0, tuple(float(a) for a in amps), tuple(float(w) for w in wls), phases)
    gx, gy = np.meshgrid(np.linspace(fx0, fx1, 96), np.linspace(fy0, fy1, 96))
    depth0 = provisional.depth(gx, gy)
    offset = float(np.quantile(depth0, 1.0 - sea_fraction))
    return Coast(normal, offset, provisional.amps, provisional.wavelengths, phases)


def _coast_polygons(
    coast: Coast,
    extent: tuple[float, ...],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray | None]:
    x0, y0, x1, y1 = extent
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    n = np.array(coast.normal)
    t = np.array(coast.tangent)
    tc = corners @ t
    diag = math.hypot(x1 - x0, y1 - y0)
    ts = np.linspace(tc.min() - 100.0, tc.max() + 100.0, int(min(6000, max(200, (tc.max() - tc.min()) / 6))))
    s = coast.offset + coast.wave(ts)
    line = ts[:, None] * t + s[:, None] * n
    far = 2.0 * diag + abs(coast.offset) + np.abs(corners @ n).max()
    sea = np.vstack([line, line[-1] + far * n, line[0] + far * n])
    sand = None
    if rng.random() < 0.8:
        width = (
            12.0
            + 10.0 * rng.random()
            + 8.0 * np.sin(2 * np.pi * ts / rng.uniform(150, 400) + rng.uniform(0, 6))
        )
        inner = line - np.maximum(width, 3.0)[:, None] * n
        sand = np.vstack([line, inner[::-1]])
    return sea, sand


def _river(
    rng: np.random.Generator,
    extent: tuple[float, ...],
    coast: Coast | None,
    focus: tuple[float, ...],
) -> tuple[np.ndarray, float] | None:
    x0, y0, x1, y1 = extent
    fx0, fy0, fx1, fy1 = focus
    if min(fx1 - fx0, fy1 - fy0) < 700:
        return None
    # Start on the land side of the world, heading across the focus (towards the sea if there is one).
    centre = np.array([(fx0 + fx1) / 2, (fy0 + fy1) / 2])
    if coast is not None:
        n = np.array(coast.normal)
        start_dir = n + 0.6 * np.array(coast.tangent) * rng.uniform(-1, 1)
    else:
        a = rng.uniform(0, 2 * np.pi)
        start_dir = np.array([math.cos(a), math.sin(a)])
    start_dir /= np.linalg.norm(start_dir)
    # Back off from the focus centre to the world boundary, shifted sideways.
    side = np.array([-start_dir[1], start_dir[0]])
    p = centre + side * rng.uniform(-0.3, 0.3) * (fx1 - fx0)
    while x0 <= p[0] <= x1 and y0 <= p[1] <= y1:
        p = p - start_dir * 20.0
    heading0 = math.atan2(start_dir[1], start_dir[0])
    lam1, lam2 = rng.uniform(500, 1100), rng.uniform(180, 350)
    ph1, ph2 = rng.uniform(0, 2 * np.pi, 2)
    amp1, amp2 = rng.uniform(0.35, 0.7), rng.uniform(0.1, 0.3)
    pts = [p.copy()]
    step = 10.0
    s = 0.0
    diag = math.hypot(x1 - x0, y1 - y0)
    inside_seen = False
    while s < 3 * diag:
        hd = (
            heading0
            + amp1 * math.sin(2 * np.pi * s / lam1 + ph1)
            + amp2 * math.sin(2 * np.pi * s / lam2 + ph2)
        )
        p = p + step * np.array([math.cos(hd), math.sin(hd)])
        s += step
        pts.append(p.copy())
        inside = x0 - 50 <= p[0] <= x1 + 50 and y0 - 50 <= p[1] <= y1 + 50
        inside_seen |= inside
        if inside_seen and not inside:
            break
        if coast is not None and coast.depth(np.array(p[0]), np.array(p[1])) > 80:
            break
    width = float(rng.uniform(18, 40))
    return np.array(pts), width


def _rural_cell(
    rng: np.random.Generator,
    table: TableBuilder,
    u0: float,
    v0: float,
    u1: float,
    v1: float,
    forest_value: float,
    parcels: list[np.ndarray],
    parcel_ids: list[int],
    tall: list[Tall],
    buildings: list[Building],
    to_world: Any,
    phi: float,
) -> None:
    along_u = rng.random() < 0.5
    n = int(rng.integers(1, 5))
    cuts = np.cumsum(np.concatenate([[0.0], rng.dirichlet(np.full(n, 3.0))]))
    p_forest = 0.08 + (0.55 if forest_value > 1.2 else 0.0)
    for k in range(n):
        if along_u:
            a, b = v0 + cuts[k] * (v1 - v0), v0 + cuts[k + 1] * (v1 - v0)
            rect = rect_uv(u0, a, u1, b)
            row_angle = phi
        else:
            a, b = u0 + cuts[k] * (u1 - u0), u0 + cuts[k + 1] * (u1 - u0)
            rect = rect_uv(a, v0, b, v1)
            row_angle = phi + np.pi / 2
        r = rng.random()
        tone = float(rng.uniform(-1, 1))
        if r < p_forest:
            cls: int = LandCover.FOREST
        else:
            r = rng.random()
            if r < 0.72:
                cls = CROPS[int(rng.integers(0, 4))]
            elif r < 0.84:
                cls = LandCover.BARE_SOIL
            else:
                cls = LandCover.GRASS
        height = float(rng.uniform(12, 24)) if cls == LandCover.FOREST else 0.0
        oid = table.add(
            cls,
            height=height,
            tone=tone,
            angle=float(row_angle),
            period=float(rng.uniform(2.5, 6.0)) if cls in CROPS else 0.0,
        )
        poly = to_world(rect)
        parcels.append(poly)
        parcel_ids.append(oid)
        if cls == LandCover.FOREST:
            # Forest canopy: a slightly inset prism (shadows in the optical, layover/shadow in the SAR).
            tall.append(
                (
                    to_world(rect_uv(rect[0, 0] + 4, rect[0, 1] + 4, rect[2, 0] - 4, rect[2, 1] - 4)),
                    height,
                    TALL_FOREST,
                    oid,
                )
            )
    if rng.random() < 0.15:
        # Farmstead in a corner of the cell: a yard and a few buildings.
        su = 1 if rng.random() < 0.5 else -1
        sv = 1 if rng.random() < 0.5 else -1
        cu = u0 + 12 if su > 0 else u1 - 12
        cv = v0 + 12 if sv > 0 else v1 - 12
        yard_w, yard_h = rng.uniform(45, 80), rng.uniform(40, 70)
        yu = sorted([cu, cu + su * yard_w])
        yv = sorted([cv, cv + sv * yard_h])
        yid = table.add(LandCover.URBAN_GROUND, tone=float(rng.uniform(-1, 1)))
        parcels.append(to_world(rect_uv(yu[0], yv[0], yu[1], yv[1])))
        parcel_ids.append(yid)
        for _ in range(int(rng.integers(1, 4))):
            w, d = rng.uniform(10, 30), rng.uniform(8, 14)
            bu = rng.uniform(yu[0] + 3, max(yu[0] + 3.5, yu[1] - w - 3))
            bv = rng.uniform(yv[0] + 3, max(yv[0] + 3.5, yv[1] - d - 3))
            fp = rect_uv(bu, bv, bu + w, bv + d)
            if any(overlap(fp, b.fp_uv, 3.0) for b in buildings[-3:]):
                continue
            buildings.append(Building(fp, float(rng.uniform(5, 9)), True, int(rng.integers(0, 5))))


def _urban_cell(
    rng: np.random.Generator,
    table: TableBuilder,
    u0: float,
    v0: float,
    u1: float,
    v1: float,
    urb: float,
    parcels: list[np.ndarray],
    parcel_ids: list[int],
    overlay: list[np.ndarray],
    overlay_ids: list[int],
    buildings: list[Building],
    to_world: Any,
    corners: list[np.ndarray],
) -> None:
    gid = table.add(LandCover.URBAN_GROUND, tone=float(rng.uniform(-1, 1)))
    parcels.append(to_world(rect_uv(u0, v0, u1, v1)))
    parcel_ids.append(gid)
    if urb > 0.65:
        style = "downtown"
    elif urb > 0.35:
        style = "apartments" if rng.random() < 0.6 else "houses"
    else:
        style = "industrial" if rng.random() < 0.3 else "houses"
    target = {"downtown": 75.0, "apartments": 110.0, "houses": 80.0, "industrial": 140.0}[style]
    nu = max(1, int(round((u1 - u0) / target)))
    nv = max(1, int(round((v1 - v0) / target)))
    su = np.linspace(u0, u1, nu + 1)
    sv = np.linspace(v0, v1, nv + 1)
    street = 7.0
    for a in su[1:-1]:
        sid = table.add(LandCover.ROAD, tone=float(rng.uniform(-1, 1)), kind=ROAD_MINOR)
        overlay.append(to_world(rect_uv(a - street / 2, v0, a + street / 2, v1)))
        overlay_ids.append(sid)
    for b in sv[1:-1]:
        sid = table.add(LandCover.ROAD, tone=float(rng.uniform(-1, 1)), kind=ROAD_MINOR)
        overlay.append(to_world(rect_uv(u0, b - street / 2, u1, b + street / 2)))
        overlay_ids.append(sid)
    # street crossings and T-junctions with the surrounding roads
    gu, gv = np.meshgrid(su, sv)
    inner = ~(((gu == su[0]) | (gu == su[-1])) & ((gv == sv[0]) | (gv == sv[-1])))
    if (nu > 1 or nv > 1) and inner.any():
        corners.append(to_world(np.stack([gu[inner], gv[inner]], axis=1)))
    for i in range(nu):
        for j in range(nv):
            inset = 6.0 + 2.0  # half a main road plus a pavement
            bu0, bu1 = su[i] + inset, su[i + 1] - inset
            bv0, bv1 = sv[j] + inset, sv[j + 1] - inset
            if bu1 - bu0 < 20 or bv1 - bv0 < 20:
                continue
            fill_block(rng, style, bu0, bv0, bu1, bv1, buildings)
