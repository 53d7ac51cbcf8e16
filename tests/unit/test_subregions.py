"""Sub-region parsing (boxes, pixel and map polygons, WKT/GeoJSON) and windows inside sub-regions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from saropt.errors import InputError, NoOverlapError
from saropt.io.windows import Window
from saropt.tiling.grid import patch_grid
from saropt.tiling.subregions import Subregion, parse_subregions, windows_in_subregion

W, H = 1000, 800


def affine_map_to_pixel(xy: np.ndarray) -> np.ndarray:
    """A fake georeferencing: 2 m pixels, origin (500000, 4200000) at the outer corner, y north-up."""
    xy = np.asarray(xy, dtype=float)
    return np.column_stack([(xy[:, 0] - 500000.0) / 2.0 - 0.5, (4200000.0 - xy[:, 1]) / 2.0 - 0.5])


def affine_pixel_to_map(xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, dtype=float)
    return np.column_stack([500000.0 + 2.0 * (xy[:, 0] + 0.5), 4200000.0 - 2.0 * (xy[:, 1] + 0.5)])


class TestParse:
    def test_none_gives_full_scene(self) -> None:
        for spec in (None, []):
            (full,) = parse_subregions(spec, width=W, height=H)
            assert full == Subregion("full", Window(0, 0, W, H), None)
            assert full.inside_fraction(Window(10, 10, 256, 256)) == 1.0

    def test_full_scene_map_bounds(self) -> None:
        (full,) = parse_subregions(None, width=W, height=H, pixel_to_map=affine_pixel_to_map)
        assert full.map_bounds == pytest.approx((500000.0, 4200000.0 - 2 * H, 500000.0 + 2 * W, 4200000.0))

    def test_boxes_and_default_names(self) -> None:
        regions = parse_subregions(
            [
                {"box": [0, 0, 500, 400]},
                {"name": "east", "box": [500, 0, 500, 800]},
                {"box": [10, 500, 20, 20]},
            ],
            width=W,
            height=H,
        )
        assert [r.name for r in regions] == ["r0", "east", "r2"]
        assert regions[1].bbox == Window(500, 0, 500, 800)
        assert all(r.polygon is None for r in regions)

    def test_box_clipped_to_scene(self) -> None:
        (r,) = parse_subregions([{"name": "edge", "box": [900, -50, 300, 200]}], width=W, height=H)
        assert r.bbox == Window(900, 0, 100, 150)

    def test_pixel_polygon(self) -> None:
        (r,) = parse_subregions(
            [{"name": "tri", "polygon": [[99.5, 99.5], [599.5, 99.5], [99.5, 599.5]], "crs": "pixel"}],
            width=W,
            height=H,
        )
        assert r.bbox == Window(100, 100, 500, 500)
        assert r.polygon == ((99.5, 99.5), (599.5, 99.5), (99.5, 599.5))
        # A window in the right-angle corner is inside, one beyond the hypotenuse is not.
        assert r.inside_fraction(Window(100, 100, 100, 100)) == pytest.approx(1.0)
        assert r.inside_fraction(Window(450, 450, 100, 100)) == 0.0
        # A window centred on the hypotenuse is half inside.
        assert r.inside_fraction(Window(300, 300, 100, 100)) == pytest.approx(0.5)
        assert r.inside_fraction(Window(300, 250, 100, 100)) == pytest.approx(0.875)

    def test_closed_ring_and_wkt_and_geojson_agree(self) -> None:
        ring = [[10.0, 20.0], [410.0, 20.0], [410.0, 220.0], [10.0, 220.0]]
        specs = [
            {"name": "list", "polygon": ring + [ring[0]]},
            {"name": "wkt", "polygon": "POLYGON ((10 20, 410 20, 410 220, 10 220, 10 20))"},
            {"name": "geojson", "polygon": {"type": "Polygon", "coordinates": [ring + [ring[0]]]}},
        ]
        regions = parse_subregions(specs, width=W, height=H)
        assert len({r.polygon for r in regions}) == 1
        assert len(regions[0].polygon) == 4
        assert len({r.bbox for r in regions}) == 1

    def test_map_polygon(self) -> None:
        # Map rectangle covering SAR pixel columns 100..299 and rows 50..149 exactly (pixel edges).
        x0, x1 = 500000.0 + 2 * 100, 500000.0 + 2 * 300
        y1, y0 = 4200000.0 - 2 * 50, 4200000.0 - 2 * 150
        (r,) = parse_subregions(
            [{"name": "geo", "polygon": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "crs": "map"}],
            width=W,
            height=H,
            map_to_pixel=affine_map_to_pixel,
            pixel_to_map=affine_pixel_to_map,
        )
        assert r.bbox == Window(100, 50, 200, 100)
        assert r.inside_fraction(Window(100, 50, 200, 100)) == pytest.approx(1.0)
        assert r.inside_fraction(Window(0, 0, 100, 50)) == 0.0
        assert r.map_bounds == pytest.approx((x0, y0, x1, y1))
        assert windows_in_subregion(r, 100, 100) == [Window(100, 50, 100, 100), Window(200, 50, 100, 100)]

    def test_map_polygon_needs_georeferencing(self) -> None:
        with pytest.raises(InputError, match="georeferenced"):
            parse_subregions([{"polygon": [[0, 0], [1, 0], [1, 1]], "crs": "map"}], width=W, height=H)

    @pytest.mark.parametrize(
        "item",
        [
            {"box": [0, 0, 10]},
            {"box": [0, 0, 0, 10]},
            {"box": [0, 0, 10.5, 10]},
            {"box": "0 0 10 10"},
            {"box": [0, 0, float("inf"), 10]},
            {"polygon": [[0, 0], [1, 1]]},
            {"polygon": [[0, 0], [10, 0], [20, 0]]},  # zero area
            {"polygon": [[0, 0], [10, "a"], [0, 10]]},
            {"polygon": "LINESTRING (0 0, 1 1)"},
            {"polygon": {"type": "Point", "coordinates": [0, 0]}},
            {"box": [0, 0, 10, 10], "polygon": [[0, 0], [10, 0], [0, 10]]},
            {},
            {"box": [0, 0, 10, 10], "crs": "utm"},
            {"box": [0, 0, 10, 10], "crs": "map"},
            {"box": [0, 0, 10, 10], "colour": "red"},
            {"name": "a b", "box": [0, 0, 10, 10]},
            {"name": "", "box": [0, 0, 10, 10]},
            "box",
        ],
    )
    def test_malformed(self, item: object) -> None:
        with pytest.raises(InputError):
            parse_subregions([item], width=W, height=H)

    def test_not_a_list(self) -> None:
        with pytest.raises(InputError):
            parse_subregions({"box": [0, 0, 1, 1]}, width=W, height=H)  # type: ignore[arg-type]

    def test_duplicate_names(self) -> None:
        with pytest.raises(InputError, match="duplicate"):
            parse_subregions(
                [{"name": "a", "box": [0, 0, 10, 10]}, {"name": "a", "box": [20, 0, 10, 10]}],
                width=W,
                height=H,
            )

    @pytest.mark.parametrize(
        "item",
        [
            {"box": [W, 0, 10, 10]},
            {"box": [-20, -20, 10, 10]},
            {"polygon": [[2000, 2000], [2100, 2000], [2000, 2100]]},
            # bbox overlaps the scene corner but the triangle itself does not
            {"polygon": [[-100, 30], [-100, -100], [30, -100]]},
        ],
    )
    def test_outside_scene(self, item: dict) -> None:
        with pytest.raises(NoOverlapError):
            parse_subregions([item], width=W, height=H)

    def test_to_dict(self) -> None:
        (r,) = parse_subregions([{"name": "t", "polygon": [[0, 0], [50, 0], [0, 50]]}], width=W, height=H)
        d = r.to_dict()
        assert d["name"] == "t" and d["bbox"] == {"col_off": 0, "row_off": 0, "width": 51, "height": 51}
        assert d["polygon"] == [[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]] and d["map_bounds"] is None


class TestWindowsInSubregion:
    def test_box_region_is_the_grid_of_its_bbox(self) -> None:
        (r,) = parse_subregions([{"box": [100, 200, 600, 500]}], width=W, height=H)
        assert windows_in_subregion(r, 256, 205) == patch_grid(Window(100, 200, 600, 500), 256, 205)

    def test_polygon_min_inside(self) -> None:
        # Right triangle: full windows only along the legs; with min_inside=0.5 more windows qualify.
        (r,) = parse_subregions(
            [{"polygon": [[-0.5, -0.5], [799.5, -0.5], [-0.5, 799.5]]}], width=W, height=H
        )
        full = windows_in_subregion(r, 100, 100)
        half = windows_in_subregion(r, 100, 100, min_inside=0.5)
        # Window (i, j) of 100 px is fully inside when i + j <= 6, half inside when i + j <= 7.
        assert len(full) == sum(1 for i in range(8) for j in range(8) if i + j <= 6)
        assert len(half) == sum(1 for i in range(8) for j in range(8) if i + j <= 7)
        assert set(full) < set(half)

    def test_invalid_min_inside(self) -> None:
        (r,) = parse_subregions(None, width=W, height=H)
        with pytest.raises(InputError):
            windows_in_subregion(r, 100, 100, min_inside=0.0)

    @settings(deadline=None, max_examples=50)
    @given(
        cx=st.floats(0, W),
        cy=st.floats(0, H),
        radius=st.floats(60, 400),
        n=st.integers(3, 12),
        rot=st.floats(0, 6.28),
    )
    @example(cx=263.75, cy=331.75, radius=399.75, n=12, rot=0.0)  # a corner 3.3e-4 px beyond an edge
    def test_polygon_windows_inside(self, cx: float, cy: float, radius: float, n: int, rot: float) -> None:
        angles = rot + np.linspace(0, 2 * np.pi, n, endpoint=False)
        poly = [[cx + radius * np.cos(a), cy + radius * np.sin(a)] for a in angles]
        try:
            (r,) = parse_subregions([{"polygon": poly}], width=W, height=H)
        except NoOverlapError:
            return
        assert Window(0, 0, W, H).contains(r.bbox)
        for w in windows_in_subregion(r, 50, 40):
            assert r.bbox.contains(w)
            # Convex polygon: a window is fully inside iff its four corners are.
            corners = [
                (w.col_off - 0.5, w.row_off - 0.5),
                (w.col_end - 0.5, w.row_off - 0.5),
                (w.col_off - 0.5, w.row_end - 0.5),
                (w.col_end - 0.5, w.row_end - 0.5),
            ]
            for x, y in corners:
                # "entirely inside" allows an area deficit of 1e-9, so a corner may lie up to ~1e-3 px beyond an
                # edge the window side meets at a shallow angle (found: 3.3e-4 px, a 12-gon of radius 399.75)
                assert _inside_convex(poly, x, y, tol=1e-3)


def _inside_convex(poly: list[list[float]], x: float, y: float, tol: float) -> bool:
    """Whether ``(x, y)`` lies inside a convex polygon or within ``tol`` px of it (signed edge distances)."""
    p = np.asarray(poly)
    q = np.roll(p, -1, axis=0)
    cross = (q[:, 0] - p[:, 0]) * (y - p[:, 1]) - (q[:, 1] - p[:, 1]) * (x - p[:, 0])
    dist = cross / np.hypot(q[:, 0] - p[:, 0], q[:, 1] - p[:, 1])
    return bool(np.all(dist >= -tol) or np.all(dist <= tol))
