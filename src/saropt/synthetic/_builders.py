"""Parts of a procedural world: buildings in town blocks, the airfield, ships and boats, and the helpers that
place them (object table, coarse water mask). Used by :func:`saropt.synthetic.landcover.build_world`.

Convention:
    World metres, x east, y south. ``uv`` is the frame of the road grid: ``world = R(phi) @ uv + origin``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from saropt.synthetic.world import (
    CONCRETE_MARKING,
    CONCRETE_RUNWAY,
    CONCRETE_TAXIWAY,
    MAX_VERTICES,
    TALL_BUILDING,
    TALL_SHIP_HULL,
    TALL_SHIP_TOP,
    Coast,
    LandCover,
    ObjectTable,
    invert_affine,
)

Tall = tuple[np.ndarray, float, int, int]  # footprint, height, kind, object id


def rot(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def rect_uv(u0: float, v0: float, u1: float, v1: float) -> np.ndarray:
    return np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]], dtype=np.float64)


def segment_quad(a: np.ndarray, b: np.ndarray, width: float, extend: float) -> np.ndarray:
    d = b - a
    ln = float(np.hypot(*d))
    if ln == 0:
        d = np.array([1.0, 0.0])
        ln = 1.0
    d = d / ln
    nrm = np.array([-d[1], d[0]]) * (width / 2)
    a2, b2 = a - d * extend, b + d * extend
    return np.array([a2 + nrm, b2 + nrm, b2 - nrm, a2 - nrm])


def disc(c: np.ndarray, r: float) -> np.ndarray:
    ang = np.arange(MAX_VERTICES) * 2 * np.pi / MAX_VERTICES
    return c + r * np.stack([np.cos(ang), np.sin(ang)], axis=1)


def overlap(a: np.ndarray, b: np.ndarray, gap: float) -> bool:
    return not (
        a[:, 0].max() + gap <= b[:, 0].min()
        or b[:, 0].max() + gap <= a[:, 0].min()
        or a[:, 1].max() + gap <= b[:, 1].min()
        or b[:, 1].max() + gap <= a[:, 1].min()
    )


class TableBuilder:
    """Growing object table (id 0 = meadow background)."""

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {
            k: [] for k in ("cls", "height", "tone", "angle", "period", "kind", "aspect")
        }
        self.add(LandCover.GRASS)

    def add(
        self,
        cls: int,
        height: float = 0.0,
        tone: float = 0.0,
        angle: float = 0.0,
        period: float = 0.0,
        kind: int = 0,
        aspect: float = float("nan"),
    ) -> int:
        c = self.cols
        c["cls"].append(int(cls))
        c["height"].append(height)
        c["tone"].append(tone)
        c["angle"].append(angle)
        c["period"].append(period)
        c["kind"].append(kind)
        c["aspect"].append(aspect)
        return len(c["cls"]) - 1

    def freeze(self) -> ObjectTable:
        c = self.cols
        return ObjectTable(
            cls=np.asarray(c["cls"], dtype=np.uint8),
            height=np.asarray(c["height"], dtype=np.float32),
            tone=np.asarray(c["tone"], dtype=np.float32),
            angle=np.asarray(c["angle"], dtype=np.float32),
            period=np.asarray(c["period"], dtype=np.float32),
            kind=np.asarray(c["kind"], dtype=np.uint8),
            aspect=np.asarray(c["aspect"], dtype=np.float32),
        )


class WaterMask:
    """Coarse raster of water (sea + river) for placing objects on land or on water."""

    def __init__(self, extent: tuple[float, float, float, float], res: float = 4.0) -> None:
        x0, y0, x1, y1 = extent
        self.res = res
        self.px_to_world = np.array([[res, 0.0, x0], [0.0, res, y0]])
        self.w2p = invert_affine(self.px_to_world)
        self.shape = (int(math.ceil((y1 - y0) / res)) + 1, int(math.ceil((x1 - x0) / res)) + 1)
        self.sea = np.zeros(self.shape, dtype=np.uint8)
        self.river = np.zeros(self.shape, dtype=np.uint8)
        self._dilated: dict[int, np.ndarray] = {}

    def _lookup(self, mask: np.ndarray, pts: np.ndarray) -> np.ndarray:
        p = pts.reshape(-1, 2) @ self.w2p[:, :2].T + self.w2p[:, 2]
        c = np.clip(np.round(p[:, 0]).astype(np.int64), 0, self.shape[1] - 1)
        r = np.clip(np.round(p[:, 1]).astype(np.int64), 0, self.shape[0] - 1)
        return mask[r, c].reshape(pts.shape[:-1]).astype(bool)

    def water(self, pts: np.ndarray, buffer_m: float = 0.0) -> np.ndarray:
        """Whether points ``(..., 2)`` are within ``buffer_m`` of water."""
        k = int(math.ceil(buffer_m / self.res))
        if k not in self._dilated:
            m = np.maximum(self.sea, self.river)
            if k > 0:
                m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
            self._dilated[k] = m
        return self._lookup(self._dilated[k], pts)

    def in_sea(self, pts: np.ndarray) -> np.ndarray:
        return self._lookup(self.sea, pts)


@dataclass
class Building:
    fp_uv: np.ndarray  # (4, 2) in the grid frame
    height: float
    gable: bool
    material: int


def fill_block(
    rng: np.random.Generator,
    style: str,
    u0: float,
    v0: float,
    u1: float,
    v1: float,
    buildings: list[Building],
) -> None:
    w, h = u1 - u0, v1 - v0
    if style == "houses":
        along_u = w >= h
        length = w if along_u else h
        for side in (0, 1):
            pos = rng.uniform(1, 6)
            while True:
                bw, bd, setback = rng.uniform(8, 16), rng.uniform(8, 13), rng.uniform(2, 6)
                if pos + bw > length - 1:
                    break
                if 2 * (setback + bd) > (h if along_u else w):
                    break
                if along_u:
                    vv = v0 + setback if side == 0 else v1 - setback - bd
                    fp = rect_uv(u0 + pos, vv, u0 + pos + bw, vv + bd)
                else:
                    uu = u0 + setback if side == 0 else u1 - setback - bd
                    fp = rect_uv(uu, v0 + pos, uu + bd, v0 + pos + bw)
                buildings.append(Building(fp, float(rng.uniform(5, 10)), True, int(rng.integers(0, 5))))
                pos += bw + rng.uniform(3, 10)
    elif style == "apartments":
        along_u = rng.random() < 0.7
        span, depth_span = (w, h) if along_u else (h, w)
        height = float(rng.uniform(15, 40))
        depth = float(rng.uniform(11, 16))
        gap = max(0.8 * height, 12.0)
        n = max(1, int((depth_span + gap) // (depth + gap)))
        slab = float(rng.uniform(0.55, 0.9)) * span
        start = (span - slab) / 2
        for k in range(n):
            off = k * (depth + gap) + (depth_span - n * depth - (n - 1) * gap) / 2
            hk = height * float(rng.uniform(0.85, 1.15))
            if along_u:
                fp = rect_uv(u0 + start, v0 + off, u0 + start + slab, v0 + off + depth)
            else:
                fp = rect_uv(u0 + off, v0 + start, u0 + off + depth, v0 + start + slab)
            buildings.append(Building(fp, hk, False, int(rng.integers(5, 8))))
    elif style == "downtown":
        ku = int(rng.integers(1, 3))
        kv = int(rng.integers(1, 3))
        cu = np.linspace(u0, u1, ku + 1)
        cv = np.linspace(v0, v1, kv + 1)
        for a in range(ku):
            for b in range(kv):
                g = rng.uniform(2, 6)
                fp = rect_uv(cu[a] + g, cv[b] + g, cu[a + 1] - g, cv[b + 1] - g)
                buildings.append(Building(fp, float(rng.uniform(20, 75)), False, int(rng.integers(5, 8))))
    else:  # industrial
        n = int(rng.integers(1, 3))
        cuts = np.linspace(u0, u1, n + 1)
        for a in range(n):
            mu, mv = rng.uniform(4, 12, 2)
            fp = rect_uv(cuts[a] + mu, v0 + mv, cuts[a + 1] - mu, v1 - rng.uniform(10, 25))
            if fp[2, 0] - fp[0, 0] > 15 and fp[2, 1] - fp[0, 1] > 15:
                buildings.append(Building(fp, float(rng.uniform(8, 14)), False, int(rng.integers(7, 9))))


def emit_building(
    rng: np.random.Generator,
    table: TableBuilder,
    b: Building,
    fp: np.ndarray,
    phi: float,
    overlay: list[np.ndarray],
    overlay_ids: list[int],
    tall: list[Tall],
) -> None:
    tone = float(rng.uniform(-1, 1))
    du = b.fp_uv[1, 0] - b.fp_uv[0, 0]
    dv = b.fp_uv[2, 1] - b.fp_uv[1, 1]
    along_u = du >= dv
    axis = phi if along_u else phi + np.pi / 2
    if b.gable:
        # Two roof halves split along the ridge (the long axis); aspect = downslope direction of each half.
        q = b.fp_uv
        if along_u:
            mid = (q[0, 1] + q[2, 1]) / 2
            halves = [rect_uv(q[0, 0], q[0, 1], q[2, 0], mid), rect_uv(q[0, 0], mid, q[2, 0], q[2, 1])]
            aspects = [phi - np.pi / 2, phi + np.pi / 2]
        else:
            mid = (q[0, 0] + q[2, 0]) / 2
            halves = [rect_uv(q[0, 0], q[0, 1], mid, q[2, 1]), rect_uv(mid, q[0, 1], q[2, 0], q[2, 1])]
            aspects = [phi + np.pi, phi]
        first = -1
        for half, asp in zip(halves, aspects):
            oid = table.add(
                LandCover.BUILDING,
                height=b.height,
                tone=tone,
                angle=float(axis),
                kind=b.material,
                aspect=float(asp),
            )
            first = oid if first < 0 else first
            # halves map to world through the same frame as the footprint
            overlay.append(uv_to_world_like(half, b.fp_uv, fp))
            overlay_ids.append(oid)
        tall.append((fp, b.height, TALL_BUILDING, first))
    else:
        oid = table.add(LandCover.BUILDING, height=b.height, tone=tone, angle=float(axis), kind=b.material)
        overlay.append(fp)
        overlay_ids.append(oid)
        tall.append((fp, b.height, TALL_BUILDING, oid))


def uv_to_world_like(pts_uv: np.ndarray, ref_uv: np.ndarray, ref_world: np.ndarray) -> np.ndarray:
    """Map uv points to world with the rigid map that takes ``ref_uv`` to ``ref_world``."""
    a = np.hstack([ref_uv[:3], np.ones((3, 1))])
    m = np.linalg.solve(a, ref_world[:3])  # (3, 2)
    return np.hstack([pts_uv, np.ones((len(pts_uv), 1))]) @ m


def add_airfield(
    rng: np.random.Generator,
    table: TableBuilder,
    U: np.ndarray,
    V: np.ndarray,
    focus: tuple[float, ...],
    to_world: Any,
    R: np.ndarray,
    origin: np.ndarray,
    water: WaterMask,
    town_c: np.ndarray,
    town_r: np.ndarray,
    overlay: list[np.ndarray],
    overlay_ids: list[int],
    buildings: list[Building],
    meta: dict[str, Any],
) -> tuple[float, float, float, float] | None:
    """Runway, taxiway, apron, hangars and markings along one of the grid axes; returns the zone (uv box)."""
    fx0, fy0, fx1, fy1 = focus
    fsize = min(fx1 - fx0, fy1 - fy0)
    half_zone = 160.0
    along_v = rng.random() < 0.5

    def uv(a: float, b: float) -> tuple[float, float]:
        return (b, a) if along_v else (a, b)

    def rect(a0: float, b0: float, a1: float, b1: float) -> np.ndarray:
        (u0, v0), (u1, v1) = uv(a0, b0), uv(a1, b1)
        return rect_uv(min(u0, u1), min(v0, v1), max(u0, u1), max(v0, v1))

    for _attempt in range(80):
        length = float(min(2600.0, rng.uniform(0.45, 0.7) * fsize))
        c_world = np.array(
            [
                rng.uniform(fx0 - 0.1 * fsize, fx1 + 0.1 * fsize),
                rng.uniform(fy0 - 0.1 * fsize, fy1 + 0.1 * fsize),
            ]
        )
        cu, cv = (c_world - origin) @ R
        ca, cb = (cv, cu) if along_v else (cu, cv)
        za0, za1 = ca - length / 2 - 80, ca + length / 2 + 80
        zb0, zb1 = cb - half_zone, cb + half_zone
        ga, gb = np.meshgrid(np.linspace(za0, za1, 25), np.linspace(zb0, zb1, 7))
        pts_uv = np.stack([gb.ravel(), ga.ravel()] if along_v else [ga.ravel(), gb.ravel()], axis=1)
        pts = to_world(pts_uv)
        if water.water(pts, buffer_m=20).any():
            continue
        if (np.hypot(*(town_c[:, None, :] - pts[None]).transpose(2, 0, 1)) < town_r[:, None] * 0.6).any():
            continue
        break
    else:
        return None
    zone = rect(za0, zb0, za1, zb1)
    zid = table.add(LandCover.GRASS, tone=float(rng.uniform(-1, 1)))
    overlay.append(to_world(zone))
    overlay_ids.append(zid)
    side = 1.0 if rng.random() < 0.5 else -1.0
    rb = cb - side * 40
    ra0, ra1 = ca - length / 2, ca + length / 2

    def concrete(a0: float, b0: float, a1: float, b1: float, kind: int) -> None:
        oid = table.add(LandCover.CONCRETE, tone=float(rng.uniform(-1, 1)), kind=kind)
        overlay.append(to_world(rect(a0, b0, a1, b1)))
        overlay_ids.append(oid)

    concrete(ra0, rb - 22.5, ra1, rb + 22.5, CONCRETE_RUNWAY)
    tb = rb + side * 110
    concrete(ra0 + 60, tb - 11.5, ra1 - 60, tb + 11.5, CONCRETE_TAXIWAY)
    lo, hi = sorted([rb, tb])
    for a in np.linspace(ra0 + 70, ra1 - 70, max(2, int(length // 500) + 1)):
        concrete(a - 11.5, lo + 20, a + 11.5, hi, CONCRETE_TAXIWAY)
    # Apron and hangars on the far side of the taxiway.
    aa = ca + rng.uniform(-0.25, 0.25) * length
    b_lo, b_hi = sorted([tb + side * 11, tb + side * 120])
    concrete(aa - 150, b_lo, aa + 150, b_hi, CONCRETE_TAXIWAY)
    h_lo, h_hi = sorted([tb + side * 125, tb + side * 160])
    ha = aa - 140
    while ha < aa + 120:
        hw = float(rng.uniform(35, 60))
        buildings.append(Building(rect(ha, h_lo, ha + hw, h_hi), float(rng.uniform(10, 16)), False, 5))
        ha += hw + rng.uniform(8, 20)
    # Centre-line dashes and threshold bars.
    for a in np.arange(ra0 + 80, ra1 - 80, 60.0):
        concrete(a, rb - 0.6, a + 30, rb + 0.6, CONCRETE_MARKING)
    for end in (ra0 + 8, ra1 - 38):
        for k in range(8):
            off = -19 + k * 5.2 + (2.0 if k >= 4 else 0)
            concrete(end, rb + off, end + 30, rb + off + 1.8, CONCRETE_MARKING)
    meta["airfield"] = {
        "runway_centre_m": [float(v) for v in to_world(np.array([uv(ca, rb)]))[0]],
        "runway_length_m": length,
        "runway_width_m": 45.0,
    }
    return (
        float(zone[:, 0].min()),
        float(zone[:, 1].min()),
        float(zone[:, 0].max()),
        float(zone[:, 1].max()),
    )


def add_ships(
    rng: np.random.Generator,
    table: TableBuilder,
    coast: Coast,
    water: WaterMask,
    extent: tuple[float, ...],
    focus: tuple[float, ...],
    overlay: list[np.ndarray],
    overlay_ids: list[int],
    tall: list[Tall],
    meta: dict[str, Any],
) -> None:
    x0, y0, x1, y1 = extent
    fx0, fy0, fx1, fy1 = focus
    # Candidate positions: sea within 1.2 km of the coast (anchorages); open sea further out stays empty.
    cand = np.stack([rng.uniform(x0, x1, 4000), rng.uniform(y0, y1, 4000)], axis=1)
    dep = coast.depth(cand[:, 0], cand[:, 1])
    cand = cand[(dep > 60) & (dep < 1200)]
    near_km2 = ((dep > 0) & (dep < 1200)).mean() * (x1 - x0) * (y1 - y0) / 1e6
    n = max(2, int(rng.poisson(4.0 * near_km2)))
    in_focus = (cand[:, 0] > fx0) & (cand[:, 0] < fx1) & (cand[:, 1] > fy0) & (cand[:, 1] < fy1)
    placed: list[tuple[np.ndarray, float]] = []
    ships_meta = []
    order = np.concatenate([np.flatnonzero(in_focus)[:3], rng.permutation(len(cand))])
    for k in order:
        if len(placed) >= n:
            break
        c = cand[k]
        length = float(np.clip(rng.lognormal(math.log(60), 0.55), 15, 250))
        if any(np.hypot(*(c - pc)) < (length + pl) / 2 + 30 for pc, pl in placed):
            continue
        beam = length / float(rng.uniform(5, 7))
        heading = float(rng.uniform(0, 2 * np.pi))
        d = np.array([math.cos(heading), math.sin(heading)])
        s = np.array([-d[1], d[0]])
        hull = np.stack(
            [
                c - d * length / 2 - s * beam / 2,
                c + d * (length / 2 - 0.18 * length) - s * beam / 2,
                c + d * length / 2,
                c + d * (length / 2 - 0.18 * length) + s * beam / 2,
                c - d * length / 2 + s * beam / 2,
            ]
        )
        if not water.in_sea(hull).all():
            continue
        h_hull = 2.0 + 0.04 * length
        h_top = h_hull + 4.0 + 0.08 * length
        top = np.stack(
            [
                c - d * (0.44 * length) - s * 0.4 * beam,
                c - d * (0.26 * length) - s * 0.4 * beam,
                c - d * (0.26 * length) + s * 0.4 * beam,
                c - d * (0.44 * length) + s * 0.4 * beam,
            ]
        )
        tone = float(rng.uniform(-1, 1))
        hid = table.add(LandCover.SHIP, height=h_hull, tone=tone, angle=heading, kind=int(rng.integers(0, 3)))
        tid = table.add(LandCover.SHIP, height=h_top, tone=tone, angle=heading, kind=3)
        overlay.extend([hull, top])
        overlay_ids.extend([hid, tid])
        tall.append((hull, h_hull, TALL_SHIP_HULL, hid))
        tall.append((top, h_top, TALL_SHIP_TOP, tid))
        placed.append((c, length))
        ships_meta.append(
            {
                "centre_m": [float(c[0]), float(c[1])],
                "length_m": length,
                "beam_m": beam,
                "heading_rad": heading,
                "corners_m": hull[[0, 2, 4]].tolist(),
            }
        )
    meta["ships"] = ships_meta


def add_river_boats(
    rng: np.random.Generator,
    table: TableBuilder,
    rpts: np.ndarray,
    rwidth: float,
    water: WaterMask,
    overlay: list[np.ndarray],
    overlay_ids: list[int],
    tall: list[Tall],
    meta: dict[str, Any],
) -> None:
    n = int(rng.integers(0, 4))
    boats = []
    for k in rng.choice(
        np.arange(2, max(3, len(rpts) - 2)), size=min(n, max(0, len(rpts) - 4)), replace=False
    ):
        a, b = rpts[k], rpts[k + 1]
        d = (b - a) / max(np.hypot(*(b - a)), 1e-9)
        s = np.array([-d[1], d[0]])
        c = a + s * rng.uniform(-0.25, 0.25) * rwidth
        length = float(rng.uniform(8, min(30.0, 2 * rwidth)))
        beam = length / 4
        hull = np.stack(
            [
                c - d * length / 2 - s * beam / 2,
                c + d * length / 3 - s * beam / 2,
                c + d * length / 2,
                c + d * length / 3 + s * beam / 2,
                c - d * length / 2 + s * beam / 2,
            ]
        )
        if water.in_sea(hull).any():
            continue
        h = 2.5
        hid = table.add(
            LandCover.SHIP,
            height=h,
            tone=float(rng.uniform(-1, 1)),
            angle=float(math.atan2(d[1], d[0])),
            kind=int(rng.integers(0, 3)),
        )
        overlay.append(hull)
        overlay_ids.append(hid)
        tall.append((hull, h, TALL_SHIP_HULL, hid))
        boats.append({"centre_m": [float(c[0]), float(c[1])], "length_m": length})
    meta["river_boats"] = boats
