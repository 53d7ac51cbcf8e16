"""Exceptions raised by saropt.

Every error saropt raises on purpose derives from :class:`SaroptError` and also from the builtin exception a
caller would expect (rasterio's pattern: ``RasterioIOError(RasterioError, OSError)``), so ``except OSError`` and
``except SaroptError`` both work. Messages are one line and say how to fix the problem; the CLI prints them
without a traceback and exits non-zero.
"""

from __future__ import annotations


class SaroptError(Exception):
    """Root of all saropt errors."""


class InputError(SaroptError, ValueError):
    """A user-supplied value, option or configuration is invalid."""


class ConfigError(InputError):
    """A build, training or evaluation configuration is invalid."""


class RasterReadError(SaroptError, OSError):
    """A raster file is missing, unreadable or not a raster."""


class BandLayoutError(SaroptError, ValueError):
    """A raster has a band count or data type saropt cannot interpret in this role."""


class CRSMismatchError(SaroptError, ValueError):
    """Two georeferenced inputs cannot be related (missing, invalid or incompatible CRS)."""


class NoOverlapError(SaroptError, ValueError):
    """Two scenes, or a scene and a sub-region, do not overlap."""


class TiePointError(SaroptError, ValueError):
    """Tie points are unreadable, too few, degenerate, or fall outside an image."""


class RegistrationError(SaroptError, RuntimeError):
    """A registration could not be computed (e.g. too few reliable automatic tie points)."""


class OutputExistsError(SaroptError, FileExistsError):
    """An output path holds something saropt did not write, or was written with another configuration."""


class EmptyResultError(SaroptError, RuntimeError):
    """A job produced nothing usable (e.g. every patch was rejected)."""


class ImageWriteError(SaroptError, OSError):
    """An image could not be written (disk full, permissions, unsupported extension)."""


class DatasetNotFoundError(SaroptError, FileNotFoundError):
    """A dataset folder is missing or incomplete; the message says which files and layout were expected."""


class CorruptFileError(SaroptError, OSError):
    """A dataset file exists but cannot be decoded; the message names its path."""


class MissingDependencyError(SaroptError, ImportError):
    """An optional dependency is not installed; the message says which extra to install."""


class CheckpointError(SaroptError, ValueError):
    """A model checkpoint or weight file is unreadable or does not fit the model."""


def require(module: str, extra: str) -> object:
    """Import an optional dependency or raise :class:`MissingDependencyError` with an install hint.

    Args:
        module: importable module name, e.g. ``"torch"``.
        extra: the saropt extra that provides it, e.g. ``"torch"``.

    Returns:
        The imported module.

    Raises:
        MissingDependencyError: if the module cannot be imported.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"{module} is required for this feature: pip install 'saropt[{extra}]'"
        ) from exc
