"""``index.parquet``: one row per patch pair (kept and rejected) with provenance, scores, flags, keep and split.

The file is deterministic (no timestamps, fixed column order, no pandas metadata) and written to a temporary
name then renamed, so a dataset whose ``index.parquet`` exists is complete.

Columns, in order (:data:`BASE_COLUMNS`, then the quality scores, then the flags, then :data:`TAIL_COLUMNS`):

==========================  =========  ==========================================================================
column                      type       meaning
==========================  =========  ==========================================================================
patch_id                    int64      patch number, the ``<n>`` of ``<n>.png``; global, stable for any workers
sar_path, opt_path          string     PNG paths relative to the dataset root (POSIX); rejected pairs under
                                       ``rejected/``; null when not written (``write_rejected: false``)
sar_tif, opt_tif            string     GeoTIFF patch paths (``outputs.geotiff``), else null
scene_id                    string     the scene pair's id
subregion                   string     the sub-region's name (``"full"`` without sub-regions)
col_off, row_off            int64      the patch window in the SAR scene (pixels; x = column, y = row, 0-based)
width, height               int64
minx, miny, maxx, maxy      float64    the window's outer bounds in the SAR CRS; null when not georeferenced
crs                         string     the SAR CRS (WKT) when georeferenced, else null
transform_model             string     the registration model (``affine``, ``projective``, ``identity``...)
registration_method         string     ``tiepoints``, ``gcps``, ``geocoding``, ``identity`` or ``auto``
registration_rmse_px        float64    RMSE of the region's registration over inlier tie points (SAR px)
registration_loo_rmse_px    float64    leave-one-out RMSE (SAR px; null when not computable)
<score>                     float64    every quality score of :func:`saropt.quality.patch_scores`
phash_sar, phash_opt        int64      64-bit perceptual hashes (two's complement) of the near-duplicate filter
flag_<name>                 bool       every filter flag (``True`` = the filter rejects the pair), including
                                       ``flag_duplicate``
duplicate_of                int64      the patch this one nearly duplicates (null when none)
reject_reasons              string     ``"; "``-joined reasons, ``""`` when kept
keep                        bool       no filter flagged the pair
split                       string     ``train``/``val``/``test``/``buffer`` for kept pairs, ``""`` for rejected
==========================  =========  ==========================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saropt.errors import CorruptFileError, DatasetNotFoundError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

#: (name, arrow type name) of the columns before the quality scores
BASE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("patch_id", "int64"),
    ("sar_path", "string"),
    ("opt_path", "string"),
    ("sar_tif", "string"),
    ("opt_tif", "string"),
    ("scene_id", "string"),
    ("subregion", "string"),
    ("col_off", "int64"),
    ("row_off", "int64"),
    ("width", "int64"),
    ("height", "int64"),
    ("minx", "float64"),
    ("miny", "float64"),
    ("maxx", "float64"),
    ("maxy", "float64"),
    ("crs", "string"),
    ("transform_model", "string"),
    ("registration_method", "string"),
    ("registration_rmse_px", "float64"),
    ("registration_loo_rmse_px", "float64"),
)
#: (name, arrow type name) of the columns after the flags
TAIL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("duplicate_of", "int64"),
    ("reject_reasons", "string"),
    ("keep", "bool"),
    ("split", "string"),
)
#: hash columns (64-bit integers) among the quality scores
HASH_COLUMNS = ("phash_sar", "phash_opt")
FLAG_PREFIX = "flag_"


def index_schema(score_names: Sequence[str], flag_names: Sequence[str]) -> pa.Schema:
    """The Arrow schema of an index with these quality scores and flags (flags without the ``flag_`` prefix)."""
    import pyarrow as pa

    types = {"int64": pa.int64(), "string": pa.string(), "float64": pa.float64(), "bool": pa.bool_()}
    cols = [pa.field(n, types[t]) for n, t in BASE_COLUMNS]
    for name in score_names:
        cols.append(pa.field(name, pa.int64() if name in HASH_COLUMNS else pa.float64()))
    cols += [pa.field(FLAG_PREFIX + n, pa.bool_()) for n in flag_names]
    cols += [pa.field(n, types[t]) for n, t in TAIL_COLUMNS]
    return pa.schema(cols)


def write_index(
    path: str | os.PathLike[str],
    rows: Sequence[Mapping[str, Any]],
    score_names: Sequence[str],
    flag_names: Sequence[str],
) -> None:
    """Write ``index.parquet`` deterministically (temporary name, then rename).

    Args:
        path: destination file.
        rows: one mapping per patch pair, sorted by ``patch_id``; keys are the column names (flags with their
            ``flag_`` prefix). Missing keys become nulls.
        score_names: quality score columns, in order.
        flag_names: flag names (without prefix), in order.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = index_schema(score_names, flag_names)
    arrays = []
    for f in schema:
        values = [r.get(f.name) for r in rows]
        if pa.types.is_floating(f.type):
            values = [None if v is None else float(v) for v in values]
        arrays.append(pa.array(values, type=f.type))
    table = pa.Table.from_arrays(arrays, schema=schema)
    dest = Path(path)
    tmp = dest.with_name(f".{dest.name}.tmp")
    pq.write_table(
        table,
        tmp,
        compression="zstd",
        use_dictionary=True,
        write_statistics=True,
        row_group_size=1 << 20,
    )
    os.replace(tmp, dest)


def read_index(root: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a saropt dataset's index as a pandas DataFrame (one row per patch pair, see the module docstring).

    Args:
        root: the dataset folder (or the ``index.parquet`` file itself).

    Returns:
        The index, sorted by ``patch_id``.

    Raises:
        DatasetNotFoundError: no ``index.parquet`` (not a saropt dataset, or an unfinished build).
        CorruptFileError: the file exists but cannot be read.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = Path(root)
    path = p if p.suffix == ".parquet" else p / "index.parquet"
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{p} is not a saropt dataset: no index.parquet (an unfinished build resumes with the same saropt build)"
        )
    try:
        table = pq.read_table(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise CorruptFileError(f"cannot read {path}: {exc}") from None
    return table.to_pandas()


def score_and_flag_columns(columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split an index's columns into its quality score columns and flag columns (with prefix)."""
    base = {n for n, _ in BASE_COLUMNS} | {n for n, _ in TAIL_COLUMNS}
    flags = [c for c in columns if c.startswith(FLAG_PREFIX)]
    scores = [c for c in columns if c not in base and c not in flags]
    return scores, flags
