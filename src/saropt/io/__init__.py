"""saropt.io: scenes, radiometric mapping to 8-bit, tie-point files, atomic image writers.

Importing this package is cheap (numpy only); rasterio and OpenCV are imported on first use.

Convention:
    Pixel coordinates everywhere are x = column, y = row, 0-based, pixel centres at integer coordinates.
    Formats with other conventions (GDAL geotransforms and GCPs, QGIS ``.points``, MATLAB check points) are
    converted on read and write.
"""

from saropt.io.images import ImageWriteError, atomic_path, read_image, write_geotiff, write_png
from saropt.io.radiometry import OpticalMapping, SarMapping
from saropt.io.raster import Scene, open_scene
from saropt.io.tiepoints import FORMATS, TiePoints, read_tiepoints, tiepoints_from_gcps, write_tiepoints
from saropt.io.windows import Window

__all__ = [
    "FORMATS",
    "ImageWriteError",
    "OpticalMapping",
    "SarMapping",
    "Scene",
    "TiePoints",
    "Window",
    "atomic_path",
    "open_scene",
    "read_image",
    "read_tiepoints",
    "tiepoints_from_gcps",
    "write_geotiff",
    "write_png",
    "write_tiepoints",
]
