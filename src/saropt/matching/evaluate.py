"""Evaluate matching models and training-free baselines under every protocol, in one table.

Thresholds: training-free measures have no natural threshold, so every method's accuracy / precision / recall
/ F1 are reported at the threshold that maximises accuracy on the *validation* split under the same protocol
(``threshold_source: "val"``). Without a usable validation split the threshold is calibrated on the evaluation
pairs themselves (``threshold_source: "eval"``, optimistic, flagged in the report). Trained models also report
their figures at their default threshold (BNN: ``d < 0.5``) under ``default``.

The JSON holds one object per protocol (``balanced``, ``hard``, ``localisation``, ``retrieval``). Each
protocol object carries the figures of the primary method (the first checkpoint, else the first baseline) at
its top level under lower-case names, and every method's figures under ``methods``. With a localisation
refiner (``ProtocolSettings.refine``), localisation's primary is the first checkpoint refined
(``"dense>cfog"``)::

    {"balanced": {"method": "bnn", "accuracy": ..., "roc_auc": ..., "methods": {"bnn": {...}, "ncc": {...}}},
     "hard": {...}, "localisation": {...}, "retrieval": {...}, "meta": {...}}

Intervals (:mod:`saropt.matching.bootstrap`, ``ProtocolSettings.bootstrap`` resamples, 0 = none): each method's
figures carry ``ci95`` (``figure -> [low, high]``) for the protocol's headline figures (accuracy and ROC-AUC,
CMR@3 and RMSE, recall@1 and recall@5), and every method but the primary carries ``vs_primary``
(``figure -> {"diff": primary minus method, "ci95": [low, high], "verdict": "ahead" | "level" | "behind"}``,
the verdict said of the primary). The markdown report shows them as a second table.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from saropt.errors import ConfigError, InputError
from saropt.matching.baselines import BASELINES, create_baseline
from saropt.matching.bootstrap import (
    HEADLINE,
    FigureFn,
    localisation_figure_fn,
    pair_figure_fn,
    paired_bootstrap,
    retrieval_figure_fn,
    verdict,
)
from saropt.matching.metrics import (
    SCENE_MIN_TEMPLATES,
    binary_figures,
    calibrate_threshold,
    classification_figures,
    localisation_figures,
    retrieval_figures,
    retrieval_scene_figures,
    scene_offsets,
    shared_scene_offsets,
)
from saropt.matching.protocols import (
    PROTOCOLS,
    PatchCodes,
    Progress,
    ProtocolSettings,
    encode_patches,
    limit_patches,
    localisation_protocol,
    pair_indices,
    pair_protocol,
    refined_name,
    retrieval_protocol,
)
from saropt.matching.scoring import EnsembleScorer, FusionScorer, ModelScorer, Scorer
from saropt.matching.views import ViewSpec

log = logging.getLogger(__name__)

#: columns of the markdown table: (protocol, figure key, header)
TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("balanced", "accuracy", "bal acc"),
    ("balanced", "precision", "bal P"),
    ("balanced", "recall", "bal R"),
    ("balanced", "f1", "bal F1"),
    ("balanced", "roc_auc", "bal AUC"),
    ("balanced", "fpr95", "bal FPR95"),
    ("hard", "accuracy", "hard acc"),
    ("hard", "roc_auc", "hard AUC"),
    ("hard", "fpr95", "hard FPR95"),
    ("localisation", "cmr_1px", "CMR@1"),
    ("localisation", "cmr_2px", "CMR@2"),
    ("localisation", "cmr_3px", "CMR@3"),
    ("localisation", "rmse_px", "RMSE px"),
    ("retrieval", "recall_at_1", "R@1"),
    ("retrieval", "recall_at_5", "R@5"),
    ("retrieval", "recall_at_10", "R@10"),
)


@dataclass(frozen=True)
class EvaluationReport:
    """Figures of every method under every protocol run.

    Attributes:
        results: ``protocol -> method -> figures``.
        primary: the method whose figures sit at the top level of each protocol object.
        meta: data, split, checkpoint, settings, counts, warnings.
        primaries: a protocol's own primary where it is not ``primary`` (localisation with a refiner).
    """

    results: dict[str, dict[str, dict[str, Any]]]
    primary: str
    meta: dict[str, Any] = field(default_factory=dict)
    primaries: dict[str, str] = field(default_factory=dict)

    def primary_of(self, proto: str) -> str:
        """The method the protocol's top level shows and the others are compared with."""
        return self.primaries.get(proto, self.primary)

    def to_dict(self) -> dict[str, Any]:
        """The JSON layout described in the module docstring."""
        out: dict[str, Any] = {}
        for proto, methods in self.results.items():
            top = dict(methods.get(self.primary_of(proto), {}))
            out[proto] = {"method": self.primary_of(proto), **top, "methods": methods}
        out["meta"] = self.meta
        return out

    def to_markdown(self) -> str:
        """One markdown table, methods as rows, protocol figures as columns, with notes below."""
        methods = list(dict.fromkeys(m for p in self.results.values() for m in p))
        cols = [c for c in TABLE_COLUMNS if c[0] in self.results]
        lines = ["| method | " + " | ".join(h for _, _, h in cols) + " |", "|---|" + "---:|" * len(cols)]
        for m in methods:
            cells = []
            for proto, key, _ in cols:
                v = self.results.get(proto, {}).get(m, {}).get(key)
                cells.append("-" if v is None else (f"{v:.2f}" if key == "rmse_px" else f"{v:.3f}"))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        table = "\n".join(lines) + "\n"
        versus = self._versus_markdown()
        if versus:
            table += "\n" + versus
        notes = []
        meta = self.meta
        notes.append(
            f"data: {meta.get('data')} split: {meta.get('split')} ({meta.get('patches')} patches, "
            f"{meta.get('scenes')} scenes)"
        )
        for proto in ("balanced", "hard"):
            if proto in self.results:
                any_m = next(iter(self.results[proto].values()))
                notes.append(
                    f"{proto}: {any_m.get('pairs')} pairs, thresholds calibrated on "
                    f"{any_m.get('threshold_source')}"
                )
        if "localisation" in self.results:
            any_m = next(iter(self.results["localisation"].values()))
            notes.append(
                f"localisation: {any_m.get('templates')} templates of {any_m.get('template_side')} px, "
                f"search radius {any_m.get('search_radius')} px (native pixels)"
            )
            offs = [
                f"{m} {f['scene_offset_median_px']:.2f} px (max {f['scene_offset_max_px']:.2f})"
                for m, f in self.results["localisation"].items()
                if "scene_offset_median_px" in f
            ]
            if offs:
                notes.append(
                    f"localisation: median error per scene (scenes of {SCENE_MIN_TEMPLATES} templates or "
                    "more), median and max over scenes: " + "; ".join(offs)
                )
            refine = meta.get("settings", {}).get("refine")
            if refine:
                rr = meta["settings"].get("refine_radius")
                notes.append(
                    f"localisation: NAME>{refine} is the trained method NAME refined by {refine}: {refine}'s "
                    f"best shift within {rr} px (per axis) of NAME's best shift (the model picks the place, "
                    f"{refine} places it)"
                )
            if meta.get("settings", {}).get("subpixel"):
                notes.append(
                    "localisation: best shifts refined to sub-pixel by a parabola through the peak's neighbours "
                    "in x and in y (not on the window's border)"
                )
            shared = meta.get("localisation_shared_scene_offsets") or {}
            if shared:
                where = ", ".join(f"{k} ({v[0]:+.1f}, {v[1]:+.1f})" for k, v in shared.items())
                notes.append(
                    f"localisation: in {len(shared)} of {meta.get('scenes')} scenes every method's median "
                    f"error is 1 px or more and the same within 1.5 px: {where}. The truth is likely off "
                    "there by that much, and CMR@1/@2 measure it as much as the methods"
                )
        if "retrieval" in self.results:
            any_m = next(iter(self.results["retrieval"].values()))
            notes.append(
                f"retrieval: {any_m.get('queries')} queries among {any_m.get('candidates')} candidates"
            )
            scene_notes = [
                f"{m} {f['misses_same_scene']} of {f['misses']}, recall@1 {f['recall_at_1_other_scenes']:.3f}"
                for m, f in self.results["retrieval"].items()
                if "misses" in f
            ]
            if scene_notes:
                notes.append(
                    "retrieval misses whose top candidate is another patch of the query's scene, and recall@1 "
                    "among the true patch and other scenes' patches only: " + "; ".join(scene_notes)
                )
        if meta.get("tta"):
            notes.append("trained models scored under the 8 flips/rotations, averaged (TTA)")
        if meta.get("ensemble"):
            notes.append(f"{self.primary}: the mean score of {meta['ensemble']} checkpoints (ensemble)")
        if meta.get("fusion"):
            notes.append(
                f"{self.primary}: the mean of the standardised scores of {', '.join(meta['fusion'])} (fusion; "
                f"scales from the balanced pairs of {meta.get('calibration_split')}); it localises with "
                f"{', '.join(meta.get('fusion_localisers', []))}"
            )
        resamples = meta.get("settings", {}).get("bootstrap")
        if versus and resamples:
            notes.append(
                f"intervals: 95%, paired bootstrap over the same pairs, templates and queries ({resamples} "
                "resamples); they leave out the variation between training seeds and between scenes"
            )
        for w in meta.get("warnings", []):
            notes.append(f"WARNING: {w}")
        return table + "\n" + "\n".join(f"- {n}" for n in notes) + "\n"

    def _versus_markdown(self) -> str:
        """Primary minus each other method on the headline figures, with intervals and verdicts.

        One table per primary: a protocol with its own primary (:attr:`primaries`) gets a table of its own.
        """
        tables = []
        for primary in dict.fromkeys(self.primary_of(p) for p in self.results):
            cols = [
                (p, k, h)
                for p, k, h in TABLE_COLUMNS
                if p in self.results and self.primary_of(p) == primary and k in dict(HEADLINE[p])
            ]
            rows = []
            protos = {p for p, _, _ in cols}
            methods = [m for m in dict.fromkeys(m for p in protos for m in self.results[p]) if m != primary]
            for m in methods:
                cells = []
                for proto, key, _ in cols:
                    v = self.results[proto].get(m, {}).get("vs_primary", {}).get(key)
                    if v is None:
                        cells.append("-")
                        continue
                    fmt = "+.2f" if key == "rmse_px" else "+.3f"
                    lo, hi = v["ci95"]
                    cells.append(f"{v['diff']:{fmt}} [{lo:{fmt}}, {hi:{fmt}}] {v['verdict']}")
                if any(c != "-" for c in cells):
                    rows.append(f"| {m} | " + " | ".join(cells) + " |")
            if rows:
                head = [
                    f"{primary} minus each method (95% interval; ahead/behind when it excludes 0):",
                    "",
                    "| method | " + " | ".join(h for _, _, h in cols) + " |",
                    "|---|" + "---:|" * len(cols),
                ]
                tables.append("\n".join(head + rows) + "\n")
        return "\n".join(tables)

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON (temporary name, then rename)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, default=_json_default))
        os.replace(tmp, p)
        return p

    def write_markdown(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_markdown` (temporary name, then rename)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
        tmp.write_text(self.to_markdown())
        os.replace(tmp, p)
        return p


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def load_model_scorer(
    checkpoint: str | os.PathLike[str], device: str = "auto", tta: bool = False
) -> tuple[ModelScorer, dict[str, Any]]:
    """A :class:`ModelScorer` from a checkpoint file or run folder, and the checkpoint dict.

    ``tta``: score under the 8 flips/rotations and average (:class:`ModelScorer`).

    Raises:
        CheckpointError: unreadable or unfit checkpoint.
    """
    from saropt.matching.checkpoint import load_checkpoint, model_from_checkpoint
    from saropt.matching.train import resolve_device

    ckpt = load_checkpoint(checkpoint)
    cfg = ckpt["config"]
    model = model_from_checkpoint(ckpt)
    spec = ViewSpec(int(cfg.get("crop", 0)), int(cfg.get("size", 0)))
    dev = resolve_device(device)
    scorer = ModelScorer(
        model,
        name=str(cfg.get("model", "model")),
        device=dev,
        threshold=float(cfg.get("threshold", 0.5)),
        spec=spec,
        channels_last=bool(cfg.get("channels_last", False)),
        tta=tta,
    )
    return scorer, ckpt


def _pair_figures(
    scorers: Sequence[Scorer], test: Any, val: Any | None, threshold_source: str
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for s in scorers:
        sc = test.scores[s.name]
        if val is not None:
            t = calibrate_threshold(val.scores[s.name], val.labels)
        else:
            t = calibrate_threshold(sc, test.labels)
        fig: dict[str, Any] = classification_figures(sc, test.labels, t)
        fig["threshold_source"] = threshold_source
        fig["pairs"] = int(test.labels.size)
        fig["positives"] = int(test.labels.sum())
        if s.default_threshold is not None:
            fig["default"] = binary_figures(sc, test.labels, s.default_threshold).as_dict()
        out[s.name] = fig
    return out


def _add_intervals(
    figures: dict[str, dict[str, Any]],
    proto: str,
    fn: FigureFn,
    n_items: int,
    primary: str,
    settings: ProtocolSettings,
    strata: np.ndarray | None = None,
) -> None:
    """Add ``ci95`` (every method) and ``vs_primary`` (the others) to a protocol's figures, in place."""
    if settings.bootstrap == 0 or primary not in figures:
        return
    keys = [k for k, _ in HEADLINE[proto]]
    cmp_ = paired_bootstrap(fn, n_items, primary, keys, settings.bootstrap, settings.seed, strata)
    for m, fig in figures.items():
        fig["ci95"] = {k: list(v) for k, v in cmp_.ci[m].items()}
        if m in cmp_.diff:
            fig["vs_primary"] = {
                k: {"diff": d, "ci95": [lo, hi], "verdict": verdict(proto, k, lo, hi)}
                for k, (d, lo, hi) in cmp_.diff[m].items()
            }


def _calibrate_fusion(
    fusion: Scorer,
    test_ds: Any,
    test_codes: PatchCodes,
    val_ds: Any | None,
    val_codes: PatchCodes | None,
    settings: ProtocolSettings,
    progress: Progress | None,
) -> None:
    """Standardise a fusion's members on the calibration split's balanced pairs (the evaluation split's
    when there is none, as thresholds are)."""
    import torch

    assert isinstance(fusion, FusionScorer)
    ds, codes = test_ds, test_codes
    if val_ds is not None:
        ds, codes = val_ds, val_codes
        if codes is None:  # only retrieval was asked for: the validation patches are encoded for this alone
            codes = encode_patches(ds, [fusion], fusion.spec, settings.batch_size, progress, "encode val")
    sar_idx, opt_idx, _ = pair_indices(ds, settings.negative_ratio, False, settings.seed)
    cs, co = codes.sar[fusion.name], codes.opt[fusion.name]
    fusion.calibrate(cs[torch.as_tensor(sar_idx)], co[torch.as_tensor(opt_idx)])


def _scenes(ds: Any) -> set[str]:
    if hasattr(ds, "records"):
        return {str(r.scene) for r in ds.records}
    return set()


def evaluate(
    data: str | os.PathLike[str],
    *,
    checkpoints: Sequence[str | os.PathLike[str]] = (),
    split: str = "test",
    baselines: Sequence[str] = BASELINES,
    protocols: Sequence[str] = PROTOCOLS,
    settings: ProtocolSettings | None = None,
    calibration_split: str | None = "val",
    view: ViewSpec | None = None,
    data_format: str | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    tta: bool = False,
    ensemble: bool = False,
    fuse: bool = False,
) -> EvaluationReport:
    """Run the protocols for trained checkpoints and training-free baselines on one split of a dataset.

    Args:
        data: dataset folder.
        checkpoints: checkpoint files or run folders; the first is the primary method.
        split: evaluation split (``"test"``, ``"val"``, ``"train"`` or ``"all"``).
        baselines: training-free measures to add (``ncc``, ``mi``, ``cfog``); empty for none.
        protocols: which of ``balanced``, ``hard``, ``localisation``, ``retrieval``.
        settings: protocol sizes and seed.
        calibration_split: split whose pairs calibrate thresholds (``None``: calibrate on the evaluation
            pairs).
        view: view for the baselines (default: the primary checkpoint's; required without checkpoints).
        data_format: reader name (default: the primary checkpoint's, else ``saropt``).
        device: torch device for models.
        progress: optional callback ``(task, done, total)``.
        tta: score trained models under the 8 flips/rotations and average (8 times the inference; the
            report's ``meta`` records it).
        ensemble: score the checkpoints as one method, the mean of their scores
            (:class:`~saropt.matching.scoring.EnsembleScorer`; one model kind and view).
        fuse: score the checkpoints as one method, the mean of their scores standardised on the calibration
            split's balanced pairs (:class:`~saropt.matching.scoring.FusionScorer`; any kinds and views).

    Returns:
        The :class:`EvaluationReport`.

    Raises:
        ConfigError: nothing to evaluate, unknown protocol or baseline, or no view for baselines.
        CheckpointError: a bad checkpoint.
        DatasetNotFoundError, InputError: dataset problems.
    """
    from saropt.matching.checkpoint import split_fingerprint
    from saropt.matching.sources import open_split

    settings = settings or ProtocolSettings()
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ConfigError(f"unknown protocols {unknown}; use {', '.join(PROTOCOLS)}")
    bad = [b for b in baselines if b not in BASELINES]
    if bad:
        raise ConfigError(f"unknown baselines {bad}; use {', '.join(BASELINES)}")
    if not checkpoints and not baselines:
        raise ConfigError("nothing to evaluate: give a checkpoint and/or baselines")
    if ensemble and fuse:
        raise ConfigError("choose one of ensemble (one kind: mean score) and fuse (any kinds)")
    if settings.refine and settings.refine not in BASELINES:
        raise ConfigError(f"unknown refiner {settings.refine!r}; use {', '.join(BASELINES)}")
    if settings.refine and not checkpoints:
        raise ConfigError("a localisation refiner refines trained models: give a checkpoint")

    scorers: list[Scorer] = []
    ckpts: list[dict[str, Any]] = []
    ckpt_names: list[str] = []
    warnings: list[str] = []
    for c in checkpoints:
        sc, ck = load_model_scorer(c, device, tta=tta)
        if any(s.name == sc.name for s in scorers):
            sc.name = f"{sc.name}-{len(scorers) + 1}"
        scorers.append(sc)
        ckpts.append(ck)
        ckpt_names.append(sc.name)
    if ensemble:
        scorers = [EnsembleScorer([s for s in scorers if isinstance(s, ModelScorer)])]
    elif fuse:
        scorers = [FusionScorer([s for s in scorers if isinstance(s, ModelScorer)])]
    if view is None:
        if not ckpts:
            raise ConfigError("baselines without a checkpoint need a view: pass crop and size")
        view = scorers[0].spec or ViewSpec()
    fmt = data_format or (str(ckpts[0]["config"].get("data_format", "saropt")) if ckpts else "saropt")
    for b in baselines:
        scorers.append(create_baseline(b))
    refiner = None
    if settings.refine:
        refiner = next((s for s in scorers if not s.trained and s.name == settings.refine), None)
        refiner = refiner or create_baseline(settings.refine)

    test_ds = limit_patches(open_split(data, split, fmt), settings.max_patches, settings.seed)
    if len(test_ds) == 0:
        raise InputError(f"split {split!r} of {data} is empty")
    val_ds = None
    source = "eval"
    # thresholds (pair protocols) and a fusion's score scales (retrieval) are calibrated; localisation is not
    calibrates = bool({"balanced", "hard"} & set(protocols)) or (fuse and "retrieval" in protocols)
    if calibration_split and calibration_split != split and split != "all":
        try:
            val_ds = limit_patches(
                open_split(data, calibration_split, fmt), settings.max_patches, settings.seed + 1
            )
            source = calibration_split
        except InputError:
            if calibrates:
                warnings.append(
                    f"no {calibration_split!r} split: thresholds calibrated on the evaluation pairs "
                    "(optimistic)"
                )
    elif calibrates and (split == "all" or calibration_split == split):
        warnings.append("thresholds calibrated on the evaluation pairs themselves (optimistic)")
    if val_ds is not None and len(val_ds) < 2:
        val_ds, source = None, "eval"

    test_fp = split_fingerprint(test_ds)
    test_scenes = _scenes(test_ds)
    for name, ck in zip(ckpt_names, ckpts):
        trained = ck["data"].get("splits", {})
        if test_fp["sha256"] in {v.get("sha256") for v in trained.values()}:
            warnings.append(f"{name}: the evaluation split is one it was trained or validated on")
        train_scenes = set(ck["data"].get("scenes", {}).get("train", []))
        leaked = sorted(test_scenes & train_scenes)
        if leaked:
            warnings.append(
                f"{name}: {len(leaked)} evaluation scenes were in its training "
                f"split (e.g. {leaked[0]}): figures are optimistic"
            )

    results: dict[str, dict[str, dict[str, Any]]] = {}
    shared_offsets: dict[str, tuple[float, float]] = {}
    primary = scorers[0].name
    primaries = {"localisation": refined_name(primary, settings.refine)} if settings.refine else {}
    test_codes = val_codes = None
    if {"balanced", "hard", "retrieval"} & set(protocols):
        test_codes = encode_patches(test_ds, scorers, view, settings.batch_size, progress, f"encode {split}")
    if val_ds is not None and {"balanced", "hard"} & set(protocols):
        val_codes = encode_patches(val_ds, scorers, view, settings.batch_size, progress, f"encode {source}")
    if fuse and test_codes is not None:
        _calibrate_fusion(scorers[0], test_ds, test_codes, val_ds, val_codes, settings, progress)
    for proto in protocols:
        log.info("protocol %s on %d patches", proto, len(test_ds))
        if proto in ("balanced", "hard"):
            hard = proto == "hard"
            assert test_codes is not None
            test_sc = pair_protocol(test_ds, test_codes, scorers, hard, settings)
            val_sc = (
                pair_protocol(val_ds, val_codes, scorers, hard, settings) if val_codes is not None else None
            )
            figs = _pair_figures(scorers, test_sc, val_sc, source)
            thresholds = {name: f["threshold"] for name, f in figs.items()}  # calibrated, as in the table
            fn = pair_figure_fn(test_sc.scores, test_sc.labels, thresholds)
            _add_intervals(figs, proto, fn, test_sc.labels.size, primary, settings, test_sc.labels)
            results[proto] = figs
        elif proto == "localisation":
            loc = localisation_protocol(test_ds, scorers, view, settings, progress, refiner)
            results[proto] = {}
            for name, pred in loc.pred_xy.items():
                f: dict[str, Any] = localisation_figures(pred, loc.true_xy)
                f.update(
                    templates=int(loc.true_xy.shape[0]),
                    search_radius=loc.search_radius,
                    template_side=loc.template_side,
                )
                results[proto][name] = f
            if loc.scenes is not None:
                offsets = {m: scene_offsets(p, loc.true_xy, loc.scenes) for m, p in loc.pred_xy.items()}
                for name, off in offsets.items():
                    fig = results[proto][name]
                    fig["scene_offsets"] = {k: list(v) for k, v in off.items()}
                    lengths = [
                        float(np.hypot(dx, dy)) for dx, dy, n in off.values() if n >= SCENE_MIN_TEMPLATES
                    ]
                    if lengths:
                        fig["scene_offset_median_px"] = float(np.median(lengths))
                        fig["scene_offset_max_px"] = max(lengths)
                shared_offsets = shared_scene_offsets(offsets)
            fn = localisation_figure_fn(loc.pred_xy, loc.true_xy)
            _add_intervals(
                results[proto], proto, fn, loc.true_xy.shape[0], primaries.get(proto, primary), settings
            )
        else:
            assert test_codes is not None
            ret = retrieval_protocol(test_codes, scorers, settings)
            results[proto] = {}
            for s in scorers:
                f = retrieval_figures(ret.ranks[s.name])
                f.update(queries=int(ret.ranks[s.name].size), candidates=ret.candidates)
                if s.name in ret.top_same_scene:
                    f.update(
                        retrieval_scene_figures(
                            ret.ranks[s.name], ret.top_same_scene[s.name], ret.ranks_other_scenes[s.name]
                        )
                    )
                results[proto][s.name] = f
            fn = retrieval_figure_fn(ret.ranks)
            _add_intervals(results[proto], proto, fn, ret.ranks[primary].size, primary, settings)

    meta = {
        "data": str(data),
        "format": fmt,
        "split": split,
        "patches": len(test_ds),
        "scenes": len(test_scenes) if test_scenes else None,
        "calibration_split": source,
        "view": {"crop": view.crop, "size": view.size},
        "checkpoints": [ck.get("path") for ck in ckpts],
        "tta": bool(tta),
        "ensemble": len(ckpts) if ensemble else 0,
        "fusion": [str(m.name) for m in scorers[0].members] if fuse else [],  # type: ignore[attr-defined]
        "fusion_localisers": scorers[0].localisers() if fuse else [],  # type: ignore[attr-defined]
        "settings": {k: getattr(settings, k) for k in settings.__dataclass_fields__},
        "split_sha256": test_fp["sha256"],
        "localisation_shared_scene_offsets": {k: list(v) for k, v in shared_offsets.items()},
        "warnings": warnings,
    }
    for w in warnings:
        log.warning("%s", w)
    return EvaluationReport(results, primary, meta, primaries)
