"""Tie points between a SAR scene and an optical scene, and their file formats.

Convention:
    Pixel coordinates, x = column, y = row, 0-based, pixel centres at integer coordinates, in each image's own
    pixel grid. ``sar_xy[i]`` and ``opt_xy[i]`` are the same ground point seen in the SAR and the optical image.
    File formats with other conventions (QGIS: pixel corners, y negated; GDAL GCPs: pixel corners; MATLAB:
    1-based) are converted on read and write, as each reader documents.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from saropt.errors import CRSMismatchError, TiePointError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class TiePoints:
    """N tie points between a SAR image and an optical image.

    Attributes:
        sar_xy: ``(N, 2)`` float64 SAR pixel coordinates (x=col, y=row).
        opt_xy: ``(N, 2)`` float64 optical pixel coordinates (x=col, y=row).
        score: ``(N,)`` float64 reliability in [0, 1] (1 = certain; manual points get 1), or ``None``.
        source: where they came from: ``"csv"``, ``"qgis"``, ``"checkpoints"``, ``"gcps"``, ``"geocoding"``,
            ``"identity"``, ``"auto"``, ``"synthetic"``...

    Convention:
        x = column, y = row, 0-based, pixel centres at integer coordinates, each in its own image grid.
    """

    sar_xy: np.ndarray
    opt_xy: np.ndarray
    score: np.ndarray | None = None
    source: str = "unknown"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sar = np.asarray(self.sar_xy, dtype=np.float64).reshape(-1, 2)
        opt = np.asarray(self.opt_xy, dtype=np.float64).reshape(-1, 2)
        if sar.shape != opt.shape:
            raise TiePointError(f"tie points: {len(sar)} SAR points but {len(opt)} optical points")
        if not (np.isfinite(sar).all() and np.isfinite(opt).all()):
            raise TiePointError("tie points contain NaN or infinite coordinates")
        object.__setattr__(self, "sar_xy", sar)
        object.__setattr__(self, "opt_xy", opt)
        if self.score is not None:
            score = np.asarray(self.score, dtype=np.float64).reshape(-1)
            if score.shape[0] != sar.shape[0]:
                raise TiePointError(f"tie points: {len(score)} scores for {len(sar)} points")
            object.__setattr__(self, "score", score)

    def __len__(self) -> int:
        return int(self.sar_xy.shape[0])

    def subset(self, mask_or_index: np.ndarray) -> TiePoints:
        """The tie points selected by a boolean mask or an index array."""
        idx = np.asarray(mask_or_index)
        return replace(
            self,
            sar_xy=self.sar_xy[idx],
            opt_xy=self.opt_xy[idx],
            score=None if self.score is None else self.score[idx],
        )

    def swapped(self) -> TiePoints:
        """Roles exchanged (for fitting the SAR -> optical direction). Used internally by the fitters."""
        return replace(self, sar_xy=self.opt_xy, opt_xy=self.sar_xy)


# ----------------------------------------------------------------------------------------------- file formats
#
# Module-level imports stay light (numpy only): rasterio is imported inside the functions that reproject.

FORMATS = ("csv", "qgis", "checkpoints")
_EXTENSIONS = {".csv": "csv", ".points": "qgis", ".txt": "checkpoints"}
_CSV_COLUMNS = ("x_sar", "y_sar", "x_opt", "y_opt")
_QGIS_HEADER = "mapX,mapY,sourceX,sourceY,enable,dX,dY,residual"

if TYPE_CHECKING:  # pragma: no cover
    from saropt.io.raster import Scene


def _num(s: str) -> str:
    """Shortest text that reads back as the same float64 (Python ``repr``)."""
    return repr(float(s))


def _read_lines(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise TiePointError(f"tie-point file not found: {path}")
    try:
        with open(path, encoding="utf-8-sig") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise TiePointError(f"{path}: not a text file ({exc.reason}); expected one of {FORMATS}") from exc
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise TiePointError(f"{path}: empty tie-point file")
    return lines


def _sniff(lines: list[str]) -> str | None:
    """Format from the first non-blank line, or ``None`` when it says nothing."""
    first = next(line.strip() for line in lines if line.strip())
    low = first.lower()
    if low.startswith("#crs") or low.startswith("mapx"):
        return "qgis"
    if "x_sar" in low.replace(" ", ""):
        return "csv"
    tokens = first.split()
    if len(tokens) == 4 and "," not in first:
        try:
            [float(t) for t in tokens]
            return "checkpoints"
        except ValueError:
            return None
    return None


def _resolve_format(path: str, fmt: str | None, lines: list[str] | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise TiePointError(f"unknown tie-point format {fmt!r}; accepted formats: {', '.join(FORMATS)}")
        return fmt
    by_content = _sniff(lines) if lines is not None else None
    by_ext = _EXTENSIONS.get(os.path.splitext(path)[1].lower())
    if by_content is not None:
        if by_ext is not None and by_ext != by_content:
            logger.debug(
                "%s: extension suggests %s, content says %s; using %s", path, by_ext, by_content, by_content
            )
        return by_content
    if by_ext is not None:
        return by_ext
    raise TiePointError(
        f"{path}: cannot tell the tie-point format; accepted formats: csv (.csv, header x_sar,y_sar,x_opt,y_opt), "
        "qgis (.points), checkpoints (.txt, 'ref_x ref_y sen_x sen_y'); pass fmt="
    )


def _floats(fields: list[str], path: str, lineno: int) -> list[float]:
    try:
        values = [float(f) for f in fields]
    except ValueError as exc:
        raise TiePointError(f"{path} line {lineno}: non-numeric value ({exc})") from exc
    if not all(np.isfinite(values)):
        raise TiePointError(f"{path} line {lineno}: NaN or infinite value")
    return values


def _check_origin(origin: int, fmt: str) -> int:
    if origin not in (0, 1):
        raise TiePointError(f"origin must be 0 (0-based) or 1 (MATLAB 1-based), got {origin!r}")
    if origin and fmt != "checkpoints":
        raise TiePointError(f"origin={origin} applies to the checkpoints format only, not {fmt}")
    return int(origin)


def _same_crs(a: str, b: str) -> bool:
    from rasterio.crs import CRS

    return bool(CRS.from_user_input(a) == CRS.from_user_input(b))


def _reproject(xy: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Map coordinates from CRS ``src`` to CRS ``dst`` (both WKT or user strings)."""
    if len(xy) == 0 or _same_crs(src, dst):
        return xy
    from rasterio.crs import CRS
    from rasterio.warp import transform

    xs, ys = transform(
        CRS.from_user_input(src), CRS.from_user_input(dst), xy[:, 0].tolist(), xy[:, 1].tolist()
    )
    out = np.column_stack([np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)])
    if not np.isfinite(out).all():
        raise CRSMismatchError(
            "some map coordinates cannot be reprojected between the two CRSs (outside their area)"
        )
    return out


def _corner_negated_to_pixel(xy: np.ndarray) -> np.ndarray:
    """QGIS pixel coordinates of a non-georeferenced raster (corner based, y negated) -> saropt pixels."""
    return np.column_stack([xy[:, 0] - 0.5, -xy[:, 1] - 0.5])


def _pixel_to_corner_negated(xy: np.ndarray) -> np.ndarray:
    """saropt pixels -> QGIS pixel coordinates of a non-georeferenced raster (corner based, y negated)."""
    return np.column_stack([xy[:, 0] + 0.5, -(xy[:, 1] + 0.5)])


def _warn_outside(tp: TiePoints, sar: Scene | None, opt: Scene | None, path: str) -> None:
    """Log a warning when most points fall outside an image: the usual sign of a wrong convention or scene."""
    for name, scene, xy in (("SAR", sar, tp.sar_xy), ("optical", opt, tp.opt_xy)):
        if scene is None or len(xy) == 0:
            continue
        inside = (
            (xy[:, 0] >= -0.5)
            & (xy[:, 0] <= scene.width - 0.5)
            & (xy[:, 1] >= -0.5)
            & (xy[:, 1] <= scene.height - 0.5)
        )
        if inside.mean() < 0.5:
            logger.warning(
                "%s: %d of %d tie points fall outside the %s image %s; check the file's coordinate convention",
                path,
                int((~inside).sum()),
                len(xy),
                name,
                scene.name,
            )


# -------------------------------------------------------------------------------------------------------- csv


def _read_csv(lines: list[str], path: str) -> TiePoints:
    import csv

    rows = [
        (i + 1, line) for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")
    ]
    if not rows:
        raise TiePointError(f"{path}: empty tie-point file")
    header_no, header_line = rows[0]
    header = [h.strip().lower() for h in next(csv.reader([header_line]))]
    missing = [c for c in _CSV_COLUMNS if c not in header]
    if missing:
        raise TiePointError(
            f"{path} line {header_no}: header lacks column(s) {missing}; expected x_sar,y_sar,x_opt,y_opt[,score]"
        )
    idx = [header.index(c) for c in _CSV_COLUMNS]
    score_idx = header.index("score") if "score" in header else None
    sar, opt, score = [], [], []
    for lineno, line in rows[1:]:
        fields = next(csv.reader([line]))
        if len(fields) != len(header):
            raise TiePointError(f"{path} line {lineno}: {len(fields)} columns, the header has {len(header)}")
        want = idx + ([score_idx] if score_idx is not None else [])
        v = _floats([fields[k] for k in want], path, lineno)
        sar.append(v[0:2])
        opt.append(v[2:4])
        if score_idx is not None:
            score.append(v[4])
    if not sar:
        raise TiePointError(f"{path}: no tie points after the header")
    return TiePoints(
        np.array(sar),
        np.array(opt),
        np.array(score) if score_idx is not None else None,
        source="csv",
        meta={"path": path},
    )


def _write_csv(tp: TiePoints) -> list[str]:
    has_score = tp.score is not None
    out = [",".join(_CSV_COLUMNS + (("score",) if has_score else ()))]
    for i in range(len(tp)):
        vals = [tp.sar_xy[i, 0], tp.sar_xy[i, 1], tp.opt_xy[i, 0], tp.opt_xy[i, 1]]
        if tp.score is not None:
            vals.append(tp.score[i])
        out.append(",".join(_num(v) for v in vals))
    return out


# ------------------------------------------------------------------------------------------------------- qgis


def _read_qgis(lines: list[str], path: str, sar: Scene | None, opt: Scene | None) -> TiePoints:
    numbered = [(i + 1, line.strip()) for i, line in enumerate(lines) if line.strip()]
    crs_text: str | None = None
    k = 0
    if numbered[0][1].startswith("#CRS"):
        crs_text = numbered[0][1][len("#CRS") :].lstrip(":").strip() or None
        k = 1
    if k >= len(numbered):
        raise TiePointError(f"{path}: no header line after #CRS; expected {_QGIS_HEADER}")
    header_no, header_line = numbered[k]
    delim = "," if "," in header_line else "\t"
    header = [h.strip().lower() for h in header_line.split(delim)]
    if header[:2] != ["mapx", "mapy"] or len(header) < 4 or header[2] not in ("sourcex", "pixelx"):
        raise TiePointError(
            f"{path} line {header_no}: not a QGIS .points header; expected {_QGIS_HEADER} "
            "(or the older mapX,mapY,pixelX,pixelY,enable,...)"
        )
    new_style = header[2] == "sourcex"
    mapxy, srcxy, enabled = [], [], []
    for lineno, line in numbered[k + 1 :]:
        if line.startswith("#"):
            continue
        fields = line.split("," if "," in line else "\t")
        if len(fields) < 4 or len(fields) > max(len(header), 4):
            raise TiePointError(
                f"{path} line {lineno}: {len(fields)} columns; expected {len(header)} like the header"
            )
        v = _floats(fields[:4], path, lineno)
        mapxy.append(v[0:2])
        srcxy.append(v[2:4])
        en = 1.0
        if len(fields) >= 5 and fields[4].strip():
            en = _floats([fields[4]], path, lineno)[0]
        enabled.append(1.0 if en != 0 else 0.0)
    if not mapxy:
        raise TiePointError(f"{path}: no tie points after the header")
    m = np.array(mapxy, dtype=np.float64)
    s = np.array(srcxy, dtype=np.float64)

    # map side = the SAR image (the reference QGIS georeferences onto)
    if sar is not None and sar.crs is not None and sar.georeferenced:
        if crs_text is not None:
            try:
                m = _reproject(m, crs_text, sar.crs)
            except Exception as exc:  # CRS parse errors come from rasterio as several types
                if isinstance(exc, CRSMismatchError):
                    raise
                raise TiePointError(f"{path} line 1: cannot use the #CRS line ({exc})") from exc
        sar_xy = sar.map_to_pixel(m)
    elif sar is None and crs_text is not None:
        raise TiePointError(
            f"{path}: mapX/mapY may be map coordinates (#CRS line present); pass sar= (the SAR Scene) so they can "
            "be converted to SAR pixels"
        )
    else:
        sar_xy = _corner_negated_to_pixel(m)

    # source side = the optical image (the raster being georeferenced)
    if opt is not None and opt.georeferenced and new_style:
        opt_xy = opt.map_to_pixel(s)  # QGIS >= 3.26 stores source points in the source layer's CRS
    else:
        opt_xy = _corner_negated_to_pixel(s)
    tp = TiePoints(
        sar_xy,
        opt_xy,
        np.array(enabled),
        source="qgis",
        meta={"path": path, "crs": crs_text, "new_style": new_style},
    )
    _warn_outside(tp, sar, opt, path)
    return tp


def _write_qgis(tp: TiePoints, sar: Scene | None, opt: Scene | None) -> list[str]:
    out = []
    if sar is not None and sar.georeferenced:
        out.append(f"#CRS: {sar.crs}")
        m = sar.pixel_to_map(tp.sar_xy)
    else:
        m = _pixel_to_corner_negated(tp.sar_xy)
    s = (
        opt.pixel_to_map(tp.opt_xy)
        if opt is not None and opt.georeferenced
        else _pixel_to_corner_negated(tp.opt_xy)
    )
    out.append(_QGIS_HEADER)
    enable = np.ones(len(tp), dtype=int) if tp.score is None else (tp.score > 0).astype(int)
    for i in range(len(tp)):
        out.append(f"{_num(m[i, 0])},{_num(m[i, 1])},{_num(s[i, 0])},{_num(s[i, 1])},{enable[i]},0,0,0")
    return out


# ------------------------------------------------------------------------------------------------ checkpoints


def _read_checkpoints(lines: list[str], path: str, origin: int) -> TiePoints:
    ref, sen = [], []
    for i, line in enumerate(lines):
        t = line.strip()
        if not t or t.startswith("#"):
            continue
        fields = t.split()
        if len(fields) != 4:
            raise TiePointError(
                f"{path} line {i + 1}: {len(fields)} columns; expected 4 (ref_x ref_y sen_x sen_y)"
            )
        v = _floats(fields, path, i + 1)
        ref.append(v[0:2])
        sen.append(v[2:4])
    if not ref:
        raise TiePointError(f"{path}: no check points")
    return TiePoints(
        np.array(sen) - origin,
        np.array(ref) - origin,
        None,
        source="checkpoints",
        meta={"path": path, "origin": origin},
    )


def _write_checkpoints(tp: TiePoints, origin: int) -> list[str]:
    o, s = tp.opt_xy + origin, tp.sar_xy + origin
    return [f"{_num(o[i, 0])} {_num(o[i, 1])} {_num(s[i, 0])} {_num(s[i, 1])}" for i in range(len(tp))]


# ------------------------------------------------------------------------------------------------- public API


def read_tiepoints(
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    sar: Scene | None = None,
    opt: Scene | None = None,
    origin: int = 0,
) -> TiePoints:
    """Read tie points from a file, converting its coordinate convention to saropt's.

    Formats (``fmt``; detected from the content, then the extension, when ``None``):

    - ``"csv"``: header ``x_sar,y_sar,x_opt,y_opt`` (+ optional ``score``; other columns ignored), saropt's
      convention as is.
    - ``"qgis"``: QGIS Georeferencer ``.points``: optional ``#CRS: <wkt>`` line, then the header
      ``mapX,mapY,sourceX,sourceY,enable,dX,dY,residual`` (QGIS >= 3.26) or ``mapX,mapY,pixelX,pixelY,enable,...``
      (older). saropt georeferences the OPTICAL image (source) onto the SAR image (map). ``mapX/mapY``: when
      ``sar`` is georeferenced they are map coordinates (in the ``#CRS``, reprojected to ``sar.crs`` if it
      differs; ``sar.crs`` when the line is absent) converted with ``sar.map_to_pixel``; otherwise they are QGIS
      coordinates of a non-georeferenced raster: pixel corners with y negated (``x_sar = mapX - 0.5``,
      ``y_sar = -mapY - 0.5``). ``sourceX/sourceY``: pixel corners with y negated (``x_opt = sourceX - 0.5``,
      ``y_opt = -sourceY - 0.5``), except that with the new header and a georeferenced ``opt`` they are map
      coordinates in the optical CRS (QGIS >= 3.26 stores source points in the layer's CRS). Rows with
      ``enable = 0`` are kept with score 0; enabled rows get score 1.
    - ``"checkpoints"``: 4 whitespace-separated columns ``ref_x ref_y sen_x sen_y``, ref = optical,
      sen = SAR (CFOG check point files). ``origin=1`` subtracts 1 (MATLAB 1-based files). The CFOG files
      (cfog-urban ``OpticaltoSAR_CP.txt``, cfog-rural ``visibleToSAR1_CP.txt``) come from CFOG's MATLAB code
      (integer ref points on a MATLAB image grid): read them with ``origin=1``. What was measured: warping the
      optical gradient magnitude onto the SAR with the points' affine, cfog-rural correlates best when ref and
      sen share one origin (NCC 0.255; shifting either column alone by 1 px gives 0.214 / 0.217; the best
      extra shift is within 0.125 px), so the columns are consistent; cfog-urban's gradient correlation is
      weak (0.09) and pulled 1-2 px by building layover, so inconclusive. Whether that shared origin is 0 or
      1 cannot be seen in the images: shifting both columns moves the fitted optical->SAR mapping by only
      ``(I - A)(1, 1)``, 0.013 px (urban) and 0.001 px (rural); ``origin=1`` follows the MATLAB source.

    Args:
        path: tie-point file.
        fmt: ``"csv"``, ``"qgis"`` or ``"checkpoints"``, or ``None`` to detect.
        sar: the SAR scene (needed for QGIS files with map coordinates).
        opt: the optical scene (needed for QGIS files whose optical raster is georeferenced).
        origin: 0 (0-based) or 1 (MATLAB 1-based); checkpoints format only.

    Returns:
        The :class:`TiePoints`; ``meta["path"]`` names the file.

    Raises:
        TiePointError: missing/empty file, unknown format (the message lists the accepted ones), wrong column
            count or non-numeric values (the message gives the line number), or missing ``sar`` for map
            coordinates.
        CRSMismatchError: map coordinates cannot be reprojected to the SAR CRS.

    Convention:
        Returned coordinates: x = column, y = row, 0-based, pixel centres at integers, each in its own image.
    """
    p = os.fspath(path)
    lines = _read_lines(p)
    f = _resolve_format(p, fmt, lines)
    origin = _check_origin(origin, f)
    if f == "csv":
        tp = _read_csv(lines, p)
    elif f == "qgis":
        tp = _read_qgis(lines, p, sar, opt)
    else:
        tp = _read_checkpoints(lines, p, origin)
    logger.debug("read %d tie points (%s) from %s", len(tp), f, p)
    return tp


def write_tiepoints(
    tp: TiePoints,
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    sar: Scene | None = None,
    opt: Scene | None = None,
    origin: int = 0,
) -> None:
    """Write tie points atomically in one of :data:`FORMATS` (see :func:`read_tiepoints` for the conventions).

    ``"csv"`` writes the score column when ``tp.score`` is set. ``"qgis"`` writes a file QGIS's Georeferencer
    loads: a ``#CRS`` line and map coordinates when ``sar`` is georeferenced (pixel corners with y negated
    otherwise), source coordinates in the optical CRS when ``opt`` is georeferenced, ``enable = score > 0``
    (scores themselves are not kept), residual columns 0. ``"checkpoints"`` writes ``ref_x ref_y sen_x sen_y``
    (optical first) plus ``origin``. Numbers are written with full float64 precision, so a write/read round
    trip returns the same points.

    Args:
        tp: the tie points.
        path: destination; its extension picks the format when ``fmt`` is ``None``.
        fmt: ``"csv"``, ``"qgis"`` or ``"checkpoints"``.
        sar: the SAR scene (QGIS: map coordinates when georeferenced).
        opt: the optical scene (QGIS: source coordinates in its CRS when georeferenced).
        origin: 0 or 1 (checkpoints only).

    Raises:
        TiePointError: unknown format or an extension that names none.

    Convention:
        ``tp`` coordinates: x = column, y = row, 0-based, pixel centres at integers.
    """
    from saropt.io.images import atomic_path

    p = os.fspath(path)
    f = _resolve_format(p, fmt, None)
    origin = _check_origin(origin, f)
    if f == "csv":
        lines = _write_csv(tp)
    elif f == "qgis":
        lines = _write_qgis(tp, sar, opt)
    else:
        lines = _write_checkpoints(tp, origin)
    with atomic_path(p) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("\n".join(lines) + "\n")


def _map_to_pixel_any(scene: Scene, xy: np.ndarray, crs: str | None) -> np.ndarray:
    """Map coordinates (in ``crs``) to the scene's pixels via its geotransform, or else its own GCPs."""
    if scene.georeferenced and scene.crs is not None:
        if crs is None:
            raise CRSMismatchError("GCPs without a CRS cannot be related to a georeferenced scene")
        return scene.map_to_pixel(_reproject(xy, crs, scene.crs))
    pix, mxy, gcrs = scene.gcps()
    if len(pix) == 0:
        raise TiePointError(
            f"{scene.path} is neither georeferenced nor has GCPs: GCP tie points need map coordinates on both"
            " sides"
        )
    if (crs is None) != (gcrs is None):
        raise CRSMismatchError(f"one side's GCPs have a CRS and the other's ({scene.path}) do not")
    if crs is not None and gcrs is not None:
        xy = _reproject(xy, crs, gcrs)
    from rasterio.control import GroundControlPoint
    from rasterio.transform import GCPTransformer

    ctrl = [
        GroundControlPoint(row=float(p[1] + 0.5), col=float(p[0] + 0.5), x=float(m[0]), y=float(m[1]))
        for p, m in zip(pix, mxy, strict=True)
    ]
    with GCPTransformer(ctrl) as t:
        rows, cols = t.rowcol(xy[:, 0].tolist(), xy[:, 1].tolist(), op=float)
    return np.column_stack(
        [np.asarray(cols, dtype=np.float64) - 0.5, np.asarray(rows, dtype=np.float64) - 0.5]
    )


def tiepoints_from_gcps(sar: Scene, opt: Scene) -> TiePoints:
    """Tie points from GCPs embedded in either file.

    Each GCP of one scene becomes a tie point: its pixel in that scene, and its map coordinates (reprojected
    with ``rasterio.warp.transform`` when the CRSs differ) taken into the other scene's pixels through the other
    scene's geotransform, or through a GDAL GCP polynomial transformer of the other scene's own GCPs. When both
    scenes carry GCPs, both sets are used.

    Args:
        sar: the SAR scene.
        opt: the optical scene.

    Returns:
        :class:`TiePoints` with ``source="gcps"`` and ``meta`` counting the GCPs from each side.

    Raises:
        TiePointError: neither scene has GCPs, or the other scene has no georeferencing to relate them to.
        CRSMismatchError: the CRSs cannot be related.

    Convention:
        GDAL GCP ``col``/``row`` are pixel-corner based; returned coordinates are x = column, y = row, 0-based,
        pixel centres at integers.
    """
    s_pix, s_map, s_crs = sar.gcps()
    o_pix, o_map, o_crs = opt.gcps()
    if len(s_pix) == 0 and len(o_pix) == 0:
        raise TiePointError(
            f"neither {sar.path} nor {opt.path} has embedded GCPs; use a tie-point file or geocoding"
        )
    sar_parts, opt_parts = [], []
    if len(s_pix):
        sar_parts.append(s_pix)
        opt_parts.append(_map_to_pixel_any(opt, s_map, s_crs))
    if len(o_pix):
        opt_parts.append(o_pix)
        sar_parts.append(_map_to_pixel_any(sar, o_map, o_crs))
    tp = TiePoints(
        np.concatenate(sar_parts),
        np.concatenate(opt_parts),
        None,
        source="gcps",
        meta={"sar_gcps": int(len(s_pix)), "opt_gcps": int(len(o_pix))},
    )
    _warn_outside(tp, sar, opt, "GCPs")
    return tp
