"""``saropt build``: resolve the plan, run the units in worker processes, finalise the dataset.

Stages (each logged at INFO with its time):

1. check the output folder (new, resumable, complete, or refused) and resolve the plan (scenes, mappings,
   registrations, patch grid, units); bad input fails here, before anything is written;
2. run the units not yet done (``workers`` processes; ``workers=1`` runs inline). Every unit writes its patches
   and then its record; the outputs do not depend on the number of workers or on interruptions;
3. finalise: near-duplicate filter across all patches in patch-number order, ``keep``, splits, ``build.yaml``,
   ``summary.json``, overviews, and ``index.parquet`` last (temporary name, then rename). The work folder
   ``.saropt/`` is removed once the index exists.

A build of a folder that already holds a complete dataset made with the same configuration does nothing; a
partial one resumes. When every patch is rejected the dataset is still written (so the index shows why) and
:class:`~saropt.errors.EmptyResultError` is raised.
"""

from __future__ import annotations

import importlib
import json
import logging
import multiprocessing as mp
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saropt.dataset.config import BuildConfig, config_to_yaml
from saropt.dataset.layout import (
    DATASET_FORMAT,
    BuildLock,
    Layout,
    check_output_folder,
    clear_saropt_folder,
)
from saropt.dataset.plan import BuildPlan, resolve_plan
from saropt.dataset.units import (
    GDAL_CACHE_MB_MAIN,
    UnitResult,
    cleanup_tmp,
    env_threads,
    gdal_env,
    init_worker,
    prepare_dirs,
    run_unit,
    run_units_in_worker,
    unit_done,
)
from saropt.errors import ConfigError, EmptyResultError, SaroptError

logger = logging.getLogger(__name__)

#: ``progress(done_units, total_units)`` after every unit, or every chunk of units in a worker pool (skipped ones
#: included, reported first)
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class BuildResult:
    """The outcome of :func:`build_dataset`.

    Attributes:
        root: the dataset folder.
        status: ``"built"`` (from scratch), ``"resumed"`` (some units were done already) or ``"complete"``
            (the folder already held this dataset: nothing was done).
        summary: the content of ``summary.json``.
        units_total: units of the plan (0 when ``complete``).
        units_run: units run by this call.
        timings: seconds per stage (``plan``, ``units``, ``finalise``, ``total``).
    """

    root: Path
    status: str
    summary: dict[str, Any]
    units_total: int = 0
    units_run: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def build_dataset(
    cfg: BuildConfig,
    out: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> BuildResult:
    """Build (or resume) a patch-pair dataset.

    Args:
        cfg: the configuration.
        out: output folder (default ``cfg.out``).
        workers: worker processes (default ``cfg.resolved_workers``); 1 runs inline. Outputs are byte-identical
            for any number.
        overwrite: replace a saropt dataset made with another configuration (never a folder saropt did not
            write).
        progress: called as ``progress(done, total)`` after each unit.

    Returns:
        The :class:`BuildResult`.

    Raises:
        ConfigError: no output folder.
        OutputExistsError: the folder holds something else, or another configuration's dataset.
        EmptyResultError: every patch was rejected (the dataset, index included, is written first).
        RasterReadError, BandLayoutError, TiePointError, CRSMismatchError, NoOverlapError: bad input (raised
            before anything is written).
    """
    with gdal_env(GDAL_CACHE_MB_MAIN):
        return _build(cfg, out, workers, overwrite, progress)


def _build(
    cfg: BuildConfig,
    out: str | os.PathLike[str] | None,
    workers: int | None,
    overwrite: bool,
    progress: ProgressFn | None,
) -> BuildResult:
    t0 = time.perf_counter()
    target = out if out is not None else cfg.out
    if target is None:
        raise ConfigError("no output folder: give --out DIR (or out: in the configuration)")
    root = Path(target).absolute()
    n_workers = workers if workers is not None else cfg.resolved_workers
    if n_workers < 1:
        raise ConfigError(f"workers must be >= 1, got {n_workers}")
    chash = cfg.config_hash()
    action = check_output_folder(root, chash, overwrite)
    if action == "complete":
        summary = json.loads((root / "summary.json").read_text())
        logger.info("%s already holds this dataset (config %s): nothing to do", root, chash)
        _raise_if_empty(summary, root)
        return BuildResult(root, "complete", summary, timings={"total": time.perf_counter() - t0})

    if n_workers > 1:
        _start_fork_server()  # its imports (about 0.6 s) overlap the planning
    plan = resolve_plan(cfg)
    t_plan = time.perf_counter() - t0
    logger.info("stage plan: %.2f s", t_plan)

    if action == "overwrite":
        logger.info("overwriting the saropt dataset in %s", root)
        clear_saropt_folder(root)
    root.mkdir(parents=True, exist_ok=True)
    layout = Layout.for_grid(root, cfg.patch_size, plan.overlap)
    with BuildLock(layout.lock_path):
        _write_state(layout, plan)
        prepare_dirs(layout, plan)
        removed = cleanup_tmp(layout)
        if removed:
            logger.info("removed %d temporary files left by an interrupted build", removed)

        t1 = time.perf_counter()
        todo = [i for i, u in enumerate(plan.units) if not unit_done(layout, u)]
        n_done = len(plan.units) - len(todo)
        if n_done:
            logger.info("resuming: %d of %d units already done", n_done, len(plan.units))
        if progress is not None:
            progress(n_done, len(plan.units))
        warm = _warm_imports() if n_workers > 1 and todo else None
        run_units(plan, layout, todo, n_workers, progress, n_done)
        if warm is not None:
            warm.join()
        t_units = time.perf_counter() - t1
        logger.info(
            "stage units: %.2f s (%d units, %d workers)",
            t_units,
            len(todo),
            max(1, min(n_workers, len(todo))),
        )

        t2 = time.perf_counter()
        from saropt.dataset.finalise import finalise

        summary = finalise(plan, layout)
        shutil.rmtree(layout.units_dir, ignore_errors=True)
        layout.state_path.unlink(missing_ok=True)
        t_fin = time.perf_counter() - t2
        logger.info("stage finalise: %.2f s", t_fin)
    _remove_empty_work_dir(layout)

    status = "resumed" if n_done else "built"
    total = time.perf_counter() - t0
    timings = {"plan": t_plan, "units": t_units, "finalise": t_fin, "total": total}
    logger.info(
        "built %s: %d pairs, %d kept, in %.2f s (%.0f pairs/s)",
        root,
        summary["pairs_total"],
        summary["kept"],
        total,
        summary["pairs_total"] / max(total, 1e-9),
    )
    _raise_if_empty(summary, root)
    return BuildResult(root, status, summary, len(plan.units), len(todo), timings)


def run_units(
    plan: BuildPlan,
    layout: Layout,
    todo: list[int],
    workers: int,
    progress: ProgressFn | None = None,
    n_done: int = 0,
) -> list[UnitResult]:
    """Run the units ``todo`` (indices into ``plan.units``), inline or in a process pool.

    Results come back in completion order; the files do not depend on it.
    """
    total = len(plan.units)
    results: list[UnitResult] = []
    if not todo:
        return results
    workers = min(workers, len(todo))
    if workers <= 1:
        from saropt.quality.config import QualityConfig

        qcfg = QualityConfig.from_dict(dict(plan.config.quality))
        for i in todo:
            results.append(run_unit(plan, plan.units[i], layout, qcfg))
            n_done += 1
            if progress is not None:
                progress(n_done, total)
        return results

    try:
        return _run_pool(plan, layout, todo, workers, progress, n_done, total, results)
    except (BrokenProcessPool, BrokenPipeError, ConnectionResetError) as exc:
        raise SaroptError(
            f"a worker process died ({exc}): killed, out of memory or interrupted; run the same build again to "
            "resume. From a script, call build_dataset under `if __name__ == '__main__':` (workers start by "
            "importing the main module) or use workers=1"
        ) from exc


def _run_pool(
    plan: BuildPlan,
    layout: Layout,
    todo: list[int],
    workers: int,
    progress: ProgressFn | None,
    n_done: int,
    total: int,
    results: list[UnitResult],
) -> list[UnitResult]:
    ctx = _mp_context()
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=init_worker,
        initargs=(plan, str(layout.root), env_threads()),
    ) as pool:
        # A bounded number of chunks in flight, submitted in plan order; results arrive as they finish.
        pending: set[Future[list[UnitResult]]] = set()
        queue = unit_chunks(plan, todo, workers)
        try:
            while queue or pending:
                while queue and len(pending) < 2 * workers:
                    pending.add(pool.submit(run_units_in_worker, queue.pop(0)))
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    done = fut.result()
                    results.extend(done)
                    n_done += len(done)
                    if progress is not None:
                        progress(n_done, total)
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    return results


def unit_chunks(plan: BuildPlan, todo: list[int], workers: int) -> list[tuple[int, ...]]:
    """The units ``todo`` in plan order, cut into chunks of neighbours that one worker runs in turn.

    A unit reads its block grown by the seamline context's margin, so horizontal neighbours read a strip of the
    same tiles; run by one worker in turn, the second finds them decoded in GDAL's block cache. Chunks are runs
    of one block row (scene, sub-region, row), cut into near-equal parts of at most ``len(todo) // (2 *
    workers)`` units (at least 1), so that every worker gets at least two chunks. Measured on the 8000 px
    benchmark scene: reading and warping a unit took 137 ms with units alternating between two workers (the
    earlier per-unit scheduling) and 100 ms run in row order with a 96 MB cache.
    """
    longest = max(1, len(todo) // (2 * max(1, workers)))
    rows: list[list[int]] = []
    last_key = None
    for i in todo:
        key = plan.units[i].row_key
        if key == last_key and rows[-1][-1] == i - 1:
            rows[-1].append(i)
        else:
            rows.append([i])
        last_key = key
    chunks: list[tuple[int, ...]] = []
    for row in rows:
        parts = -(-len(row) // longest)  # ceil
        for k in range(parts):
            chunks.append(tuple(row[k * len(row) // parts : (k + 1) * len(row) // parts]))
    return chunks


#: modules the fork server imports once, so that each worker starts in milliseconds
_PRELOAD = [
    "saropt.dataset.units",
    "saropt.registration.warp",
    "saropt.io.raster",
    "saropt.io.images",
    "saropt.quality.score",
    "saropt.io.png",
    "rasterio",  # imported lazily by saropt.io.raster: 0.12 s per worker otherwise
]


def _mp_context() -> Any:
    """The multiprocessing context of the worker pool.

    ``fork`` is not safe here: a parent that already ran OpenCV's thread pool (an inline unit, an overview)
    deadlocks its forked children inside OpenCV. ``forkserver`` forks workers from a clean server process that
    has imported saropt once; platforms without it use ``spawn``.
    """
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        return ctx
    return mp.get_context("spawn")


#: modules the finalise stage imports (pandas and pyarrow alone: 0.35 s)
_FINALISE_MODULES = ("pyarrow", "pyarrow.parquet", "pandas", "saropt.dataset.finalise", "saropt.viz.overview")


def _warm_imports() -> threading.Thread:
    """Import the finalise stage's modules in a thread of the main process, idle while the workers run."""

    def run() -> None:
        for name in _FINALISE_MODULES:
            try:
                importlib.import_module(name)
            except ImportError:  # pragma: no cover - finalise reports a missing dependency itself
                pass

    t = threading.Thread(target=run, name="saropt-warm-imports", daemon=True)
    t.start()
    return t


def _start_fork_server() -> None:
    """Start the fork server now (it imports :data:`_PRELOAD` in the background) instead of at the pool's
    first task; harmless where there is none."""
    ctx = _mp_context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        try:
            forkserver.ensure_running()
        except (RuntimeError, OSError):  # e.g. called while a child bootstraps: the pool reports it later
            pass


def _write_state(layout: Layout, plan: BuildPlan) -> None:
    from saropt import __version__
    from saropt.io.images import atomic_path

    layout.work.mkdir(parents=True, exist_ok=True)
    state = {
        "format": DATASET_FORMAT,
        "saropt_version": __version__,
        "config_hash": plan.config_hash,
        "units": len(plan.units),
        "patches": plan.n_patches,
    }
    with atomic_path(layout.state_path) as tmp:
        Path(tmp).write_text(json.dumps(state, indent=2))
    # The configuration is written at once (a partial build shows what it is building); rewritten when final.
    with atomic_path(layout.config) as tmp:
        Path(tmp).write_text(config_to_yaml(plan.config))


def _remove_empty_work_dir(layout: Layout) -> None:
    try:
        layout.work.rmdir()
    except OSError:
        pass


def _raise_if_empty(summary: dict[str, Any], root: Path) -> None:
    if summary.get("pairs_total", 0) > 0 and summary.get("kept", 0) == 0:
        reasons = summary.get("rejected_by_reason", {})
        top = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
        raise EmptyResultError(
            f"every one of the {summary['pairs_total']} patch pairs was rejected ({top}); see "
            f"{root / 'index.parquet'} and {root / 'overview'} for why, then relax the quality thresholds "
            "(--set quality.<name>=...) or fix the registration"
        )
