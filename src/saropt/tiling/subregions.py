"""Sub-regions of a SAR scene: named pixel boxes or polygons, each registered and tiled on its own.

QXS-SAROPT registers each sub-region of a scene pair separately (its step C), because one global model cannot
follow terrain-induced distortions over a whole scene. A sub-region is given in a build configuration as

* a box ``{"name": "a", "box": [col_off, row_off, width, height]}`` in SAR pixels;
* a polygon ``{"name": "b", "polygon": [[x, y], ...], "crs": "pixel"}`` in SAR pixel coordinates, or with
  ``"crs": "map"`` in the SAR scene's map coordinates (converted with the ``map_to_pixel`` function that the
  caller passes for a georeferenced scene);
* a polygon given as WKT (``"POLYGON ((x y, x y, ...))"``) or as a GeoJSON-like mapping
  (``{"type": "Polygon", "coordinates": [[[x, y], ...]]}``) in place of the vertex list.

Convention:
    x = column, y = row, 0-based, pixel centres at integer coordinates, in the SAR scene's pixel grid. Polygon
    vertices are continuous pixel coordinates: the pixel ``(c, r)`` covers ``[c - 0.5, c + 0.5] x
    [r - 0.5, r + 0.5]``, and a window covers ``[col_off - 0.5, col_end - 0.5]`` in x. Map coordinates are
    ``(x, y)`` = (easting / longitude, northing / latitude) in the scene's CRS.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from saropt.errors import InputError, NoOverlapError
from saropt.io.windows import Window
from saropt.tiling.grid import patch_grid

logger = logging.getLogger(__name__)

#: ``(N, 2)`` array of (x, y) in one coordinate system -> ``(N, 2)`` array of (x, y) in another
CoordFn = Callable[[np.ndarray], np.ndarray]

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_ITEM_KEYS = {"name", "box", "polygon", "crs"}
_EPS = 1e-9


@dataclass(frozen=True)
class Subregion:
    """A named region of a SAR scene.

    Convention:
        ``bbox`` is a SAR pixel window clipped to the scene; ``polygon`` vertices are continuous SAR pixel
        coordinates ``(x=col, y=row)`` with pixel centres at integers (``None`` for a box region).

    Attributes:
        name: unique name within the scene pair (letters, digits, ``_ . -``).
        bbox: the pixel window covering the region, clipped to the scene.
        polygon: polygon vertices (not closed: the last vertex is not a repeat of the first), or ``None``.
        map_bounds: ``(xmin, ymin, xmax, ymax)`` of the region in map coordinates when the caller gave a
            ``pixel_to_map`` function, else ``None`` (provenance for the index and summary).
    """

    name: str
    bbox: Window
    polygon: tuple[tuple[float, float], ...] | None = None
    map_bounds: tuple[float, float, float, float] | None = None

    def inside_fraction(self, window: Window) -> float:
        """Fraction of a window's area that lies inside the region.

        For a box region this is the fraction inside ``bbox`` (1 when the window is contained); for a polygon
        region it is the exact area of the window rectangle clipped to the polygon, divided by the window area.

        Convention:
            ``window`` is a SAR pixel window; it covers ``[col_off - 0.5, col_end - 0.5] x
            [row_off - 0.5, row_end - 0.5]`` in continuous pixel coordinates.

        Args:
            window: a SAR pixel window with positive area.

        Returns:
            A fraction in ``[0, 1]``.

        Raises:
            InputError: for an empty window.
        """
        if window.area <= 0:
            raise InputError(f"window {window} has no area")
        inter = window.intersection(self.bbox)
        if inter is None:
            return 0.0
        if self.polygon is None:
            return inter.area / window.area
        x0, y0 = window.col_off - 0.5, window.row_off - 0.5
        x1, y1 = window.col_end - 0.5, window.row_end - 0.5
        clipped = _clip_polygon_to_rect(self.polygon, x0, y0, x1, y1)
        return min(1.0, abs(_polygon_area(clipped)) / window.area)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (name, bbox, polygon or ``None``, map bounds or ``None``)."""
        return {
            "name": self.name,
            "bbox": self.bbox.to_dict(),
            "polygon": None if self.polygon is None else [list(p) for p in self.polygon],
            "map_bounds": None if self.map_bounds is None else list(self.map_bounds),
        }


def _polygon_area(points: Sequence[tuple[float, float]]) -> float:
    """Signed shoelace area (positive counter-clockwise in x-right / y-up axes)."""
    if len(points) < 3:
        return 0.0
    p = np.asarray(points, dtype=np.float64)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _clip_polygon_to_rect(
    polygon: Sequence[tuple[float, float]], x0: float, y0: float, x1: float, y1: float
) -> list[tuple[float, float]]:
    """Sutherland-Hodgman clip of any simple polygon to an axis-aligned rectangle.

    The clip region is convex, so the output's area is exactly the intersection area even for a concave
    polygon (the output may contain zero-width slivers along the rectangle's edges, which have no area).
    """
    out = [(float(x), float(y)) for x, y in polygon]
    # (axis, bound, keep_greater)
    for axis, bound, greater in ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False)):
        if not out:
            break
        src, out = out, []
        prev = src[-1]
        for cur in src:
            cur_in = cur[axis] >= bound if greater else cur[axis] <= bound
            prev_in = prev[axis] >= bound if greater else prev[axis] <= bound
            if cur_in:
                if not prev_in:
                    out.append(_cross(prev, cur, axis, bound))
                out.append(cur)
            elif prev_in:
                out.append(_cross(prev, cur, axis, bound))
            prev = cur
    return out


def _cross(a: tuple[float, float], b: tuple[float, float], axis: int, bound: float) -> tuple[float, float]:
    t = (bound - a[axis]) / (b[axis] - a[axis])
    x = a[0] + t * (b[0] - a[0])
    y = a[1] + t * (b[1] - a[1])
    return (bound, y) if axis == 0 else (x, bound)


def _parse_wkt(text: str, where: str) -> list[tuple[float, float]]:
    match = re.fullmatch(r"\s*POLYGON\s*\(\s*\(([^()]*)\)\s*(?:,\s*\([^()]*\)\s*)*\)\s*", text, re.IGNORECASE)
    if match is None:
        raise InputError(
            f"{where}: polygon string must be WKT 'POLYGON ((x y, x y, ...))', got {text[:60]!r}"
        )
    if re.search(r"\)\s*,\s*\(", text):
        logger.warning("%s: WKT polygon holes are ignored; only the outer ring is used", where)
    points = []
    for pair in match.group(1).split(","):
        parts = pair.split()
        if len(parts) < 2:
            raise InputError(f"{where}: WKT vertex {pair.strip()!r} needs two numbers 'x y'")
        try:
            points.append((float(parts[0]), float(parts[1])))
        except ValueError as exc:
            raise InputError(f"{where}: WKT vertex {pair.strip()!r} is not numeric") from exc
    return points


def _polygon_vertices(value: Any, where: str) -> list[tuple[float, float]]:
    """Vertices from a vertex list, a WKT string or a GeoJSON-like mapping; the closing repeat is dropped."""
    if isinstance(value, str):
        points = _parse_wkt(value, where)
    elif isinstance(value, Mapping):
        if value.get("type") != "Polygon" or "coordinates" not in value:
            raise InputError(
                f"{where}: a polygon mapping must be GeoJSON-like {{'type': 'Polygon', 'coordinates'}}"
            )
        rings = value["coordinates"]
        if not isinstance(rings, Sequence) or not rings:
            raise InputError(f"{where}: GeoJSON polygon has no rings")
        if len(rings) > 1:
            logger.warning("%s: GeoJSON polygon holes are ignored; only the outer ring is used", where)
        points = _vertex_list(rings[0], where)
    else:
        points = _vertex_list(value, where)
    if len(points) >= 2 and points[0] == points[-1]:
        points = points[:-1]
    if len(points) < 3:
        raise InputError(f"{where}: a polygon needs at least 3 distinct vertices, got {len(points)}")
    return points


def _vertex_list(value: Any, where: str) -> list[tuple[float, float]]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InputError(f"{where}: polygon must be a list of [x, y] vertices, got {type(value).__name__}")
    points = []
    for vertex in value:
        if isinstance(vertex, (str, bytes)) or not isinstance(vertex, Sequence) or len(vertex) != 2:
            raise InputError(f"{where}: polygon vertex {vertex!r} must be [x, y]")
        try:
            points.append((float(vertex[0]), float(vertex[1])))
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: polygon vertex {vertex!r} is not numeric") from exc
    return points


def _box_window(value: Any, where: str) -> Window:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 4:
        raise InputError(
            f"{where}: box must be [col_off, row_off, width, height] in SAR pixels, got {value!r}"
        )
    ints = []
    for v in value:
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float, np.integer, np.floating))
            or not math.isfinite(float(v))
            or v != int(v)
        ):
            raise InputError(f"{where}: box values must be whole pixel numbers, got {value!r}")
        ints.append(int(v))
    col_off, row_off, width, height = ints
    if width <= 0 or height <= 0:
        raise InputError(f"{where}: box width and height must be positive, got {width}x{height}")
    return Window(col_off, row_off, width, height)


def _bbox_of_polygon(points: np.ndarray) -> Window:
    # Pixels whose square [c - 0.5, c + 0.5] meets the polygon's bounding box.
    c0 = math.floor(float(points[:, 0].min()) + 0.5)
    r0 = math.floor(float(points[:, 1].min()) + 0.5)
    c1 = math.ceil(float(points[:, 0].max()) + 0.5)
    r1 = math.ceil(float(points[:, 1].max()) + 0.5)
    return Window(c0, r0, max(c1 - c0, 1), max(r1 - r0, 1))


def _map_bounds(sub_polygon: np.ndarray, pixel_to_map: CoordFn) -> tuple[float, float, float, float]:
    mapped = np.asarray(pixel_to_map(sub_polygon), dtype=np.float64).reshape(-1, 2)
    return (
        float(mapped[:, 0].min()),
        float(mapped[:, 1].min()),
        float(mapped[:, 0].max()),
        float(mapped[:, 1].max()),
    )


def parse_subregions(
    spec: list[Any] | None,
    *,
    width: int,
    height: int,
    pixel_to_map: CoordFn | None = None,
    map_to_pixel: CoordFn | None = None,
) -> list[Subregion]:
    """Parse a sub-region list from a build configuration.

    Regions partly outside the scene are clipped (logged); ``bbox`` is always inside the scene.

    Convention:
        Boxes and ``"crs": "pixel"`` polygons are in SAR pixel coordinates (x = column, y = row, 0-based,
        pixel centres at integers). ``"crs": "map"`` polygons are ``(x, y)`` in the SAR scene's CRS.
        ``map_to_pixel`` and ``pixel_to_map`` take and return ``(N, 2)`` float arrays of ``(x, y)`` and use
        saropt's pixel convention on the pixel side (convert GDAL's corner convention before passing them).

    Args:
        spec: list of mappings (see the module docstring); ``None`` or ``[]`` gives one region ``"full"``
            covering the whole scene.
        width: SAR scene width in pixels.
        height: SAR scene height in pixels.
        pixel_to_map: optional SAR pixel -> map function; when given, every region records ``map_bounds``.
        map_to_pixel: SAR map -> pixel function, required for ``"crs": "map"`` polygons.

    Returns:
        The sub-regions in the order given. Names default to ``"r0"``, ``"r1"``, ... by position.

    Raises:
        InputError: for a malformed item, an unknown key or crs, a degenerate polygon, a ``"map"`` polygon
            without ``map_to_pixel``, or duplicate names.
        NoOverlapError: for a region entirely outside the scene.
    """
    if width <= 0 or height <= 0:
        raise InputError(f"scene size must be positive, got {width}x{height}")
    scene = Window(0, 0, width, height)
    if not spec:
        full = Subregion("full", scene, None)
        if pixel_to_map is not None:
            corners = np.array(
                [[-0.5, -0.5], [width - 0.5, -0.5], [width - 0.5, height - 0.5], [-0.5, height - 0.5]]
            )
            full = Subregion("full", scene, None, _map_bounds(corners, pixel_to_map))
        return [full]
    if isinstance(spec, (str, bytes, Mapping)) or not isinstance(spec, Sequence):
        raise InputError(f"sub-regions must be a list of mappings, got {type(spec).__name__}")

    regions: list[Subregion] = []
    seen: set[str] = set()
    for i, item in enumerate(spec):
        where = f"sub-region {i}"
        if not isinstance(item, Mapping):
            raise InputError(
                f"{where}: expected a mapping with 'box' or 'polygon', got {type(item).__name__}"
            )
        unknown = set(item) - _ITEM_KEYS
        if unknown:
            raise InputError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_ITEM_KEYS)}")
        name = item.get("name", f"r{i}")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise InputError(f"{where}: name must be letters, digits, '_', '.' or '-', got {name!r}")
        where = f"sub-region {name!r}"
        if name in seen:
            raise InputError(f"{where}: duplicate sub-region name; give every sub-region a unique name")
        seen.add(name)
        has_box, has_poly = "box" in item, "polygon" in item
        if has_box == has_poly:
            raise InputError(f"{where}: give exactly one of 'box' or 'polygon'")
        crs = item.get("crs", "pixel")
        if crs not in ("pixel", "map"):
            raise InputError(f"{where}: crs must be 'pixel' or 'map', got {crs!r}")

        if has_box:
            if crs != "pixel":
                raise InputError(
                    f"{where}: a box is in SAR pixels; give a map region as a 'polygon' with crs 'map'"
                )
            box = _box_window(item["box"], where)
            polygon = None
            outline = np.array(
                [
                    [box.col_off - 0.5, box.row_off - 0.5],
                    [box.col_end - 0.5, box.row_off - 0.5],
                    [box.col_end - 0.5, box.row_end - 0.5],
                    [box.col_off - 0.5, box.row_end - 0.5],
                ]
            )
        else:
            points = np.asarray(_polygon_vertices(item["polygon"], where), dtype=np.float64)
            if crs == "map":
                if map_to_pixel is None:
                    raise InputError(
                        f"{where}: a 'map' polygon needs a georeferenced SAR scene; give it in pixels (crs: pixel)"
                    )
                points = np.asarray(map_to_pixel(points), dtype=np.float64).reshape(-1, 2)
            if not np.all(np.isfinite(points)):
                raise InputError(f"{where}: polygon has non-finite vertices (outside the CRS's valid area?)")
            if abs(_polygon_area([tuple(p) for p in points])) < _EPS:
                raise InputError(f"{where}: polygon has zero area; check the vertex order and coordinates")
            box = _bbox_of_polygon(points)
            polygon = tuple((float(x), float(y)) for x, y in points)
            outline = points

        clipped = box.clip(width, height)
        if clipped is None:
            raise NoOverlapError(
                f"{where}: region {box.to_dict()} lies entirely outside the {width}x{height} SAR scene"
            )
        if polygon is not None:
            inside = _clip_polygon_to_rect(polygon, -0.5, -0.5, width - 0.5, height - 0.5)
            if abs(_polygon_area(inside)) < _EPS:
                raise NoOverlapError(f"{where}: polygon lies entirely outside the {width}x{height} SAR scene")
        if clipped != box:
            logger.info("%s: clipped %s to the scene: %s", where, box.to_dict(), clipped.to_dict())
        bounds = _map_bounds(outline, pixel_to_map) if pixel_to_map is not None else None
        regions.append(Subregion(name, clipped, polygon, bounds))
    return regions


def windows_in_subregion(
    sub: Subregion, patch_size: int, stride: int, min_inside: float = 1.0
) -> list[Window]:
    """Patch windows of a sub-region: the grid over its bounding box, keeping windows inside enough.

    The grid starts at the bounding box's top-left pixel (see :func:`saropt.tiling.grid.patch_grid`). For a
    polygon region a window is kept when at least ``min_inside`` of its area lies inside the polygon (1.0:
    entirely inside; 0.5: centre-ish rule).

    Convention:
        SAR pixel windows, x = column, y = row, 0-based, pixel centres at integer coordinates.

    Args:
        sub: the sub-region.
        patch_size: patch side in pixels.
        stride: stride in pixels.
        min_inside: the smallest fraction of a window's area inside the region, in ``(0, 1]``.

    Returns:
        Windows in row-major order.

    Raises:
        InputError: for ``min_inside`` outside ``(0, 1]`` or a non-positive patch size or stride.
    """
    if not 0.0 < min_inside <= 1.0:
        raise InputError(f"min_inside must be a fraction in (0, 1], got {min_inside}")
    windows = patch_grid(sub.bbox, patch_size, stride)
    if sub.polygon is None:
        return windows
    return [w for w in windows if sub.inside_fraction(w) >= min_inside - 1e-9]
