"""Detector initialisation by name: ``random``, ``osm:<matching checkpoint>``, ``osd:<detector checkpoint>``, a file.

- ``random``: timm's default initialisation (what :func:`~saropt.detection.models.build_detector` gives).
- ``osm:PATH`` (optical-SAR matching pretraining, Bao et al. 2021): the **SAR branch backbone** of a matching
  model trained by ``saropt match train`` (a run folder or ``.pt``) goes into the detector backbone. See
  :func:`matching_sar_backbone` for the checkpoint layout read. The backbone names must agree; the first
  convolution is adapted to the detector's input channels (1 -> C: repeated and divided by C, so a grey image
  repeated over C channels gives the same response; C -> 1: summed). Pyramid and heads stay random.
- ``osd:PATH`` (optical ship detector pretraining): every tensor of a detector checkpoint written by
  ``saropt detect train`` (backbone, pyramid, RPN and heads) whose name and shape fit is loaded; the whole
  backbone must fit.
- ``PATH``: a local state dict: a detector state dict (keys ``backbone.body.*``) is loaded like ``osd:``;
  anything else is taken as a timm/torchvision backbone (``fc``/``head`` dropped, first conv adapted).

Nothing is ever downloaded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saropt.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

#: key prefixes of a matching model's SAR branch backbone, tried in this order (the first present wins):
#: saropt BridgeNetwork (``sar_branch = Sequential(backbone, Linear, Sigmoid)``), saropt PseudoSiamese
#: (``sar_branch = backbone``), and common spellings of other two-branch models.
SAR_PREFIXES = ("sar_branch.0.", "sar_branch.", "sar_backbone.", "sar_encoder.", "sar.", "branch_sar.")
_WRAPPERS = ("module.", "model.", "backbone.", "encoder.")
_HEADS = ("fc.", "head.", "classifier.", "head_fc.", "last_linear.")


@dataclass(frozen=True)
class InitReport:
    """What an initialisation loaded.

    Attributes:
        init: the initialisation string.
        kind: ``"random"``, ``"osm"``, ``"osd"``, ``"backbone_file"`` or ``"detector_file"``.
        loaded: number of tensors loaded.
        total: number of tensors in the detector.
        adapted: names of tensors adapted (first convolution channels).
        source_backbone: backbone name recorded in the source checkpoint (``""`` when unknown).
    """

    init: str
    kind: str
    loaded: int
    total: int
    adapted: tuple[str, ...] = ()
    source_backbone: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields."""
        return {"init": self.init, "kind": self.kind, "loaded": self.loaded, "total": self.total,
                "adapted": list(self.adapted), "source_backbone": self.source_backbone}


def adapt_first_conv(weight: Any, in_chans: int) -> Any:
    """Adapt a ``(O, C_src, k, k)`` convolution weight to ``in_chans`` input channels.

    ``C_src = 1 -> C``: repeat and divide by ``C`` (a grey image repeated over C channels gives the same output);
    ``C_src -> 1``: sum over channels (the response to a grey image repeated over ``C_src`` channels); other
    combinations: average over channels, repeated.

    Args:
        weight: the source weight tensor.
        in_chans: the target input channels.

    Returns:
        A ``(O, in_chans, k, k)`` tensor.
    """
    c = weight.shape[1]
    if c == in_chans:
        return weight
    if c == 1:
        return weight.repeat(1, in_chans, 1, 1) / in_chans
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    return weight.mean(dim=1, keepdim=True).repeat(1, in_chans, 1, 1)


def _torch_load(path: Path) -> Any:
    import torch

    if not path.is_file():
        raise CheckpointError(f"weight file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read weights {path}: {' '.join(str(exc).split())[:200]}") from exc


def _tensor_dict(obj: Any) -> dict[str, Any]:
    import torch

    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)} if isinstance(obj, Mapping) else {}


def matching_sar_backbone(path: str | Path) -> tuple[str, dict[str, Any]]:
    """The SAR-branch backbone weights of a matching checkpoint.

    Reads saropt's own matching checkpoints through :func:`saropt.matching.checkpoint.load_checkpoint`
    (``format: "saropt-matching"``; run folders resolve to ``best.pt`` then ``last.pt``). Any other
    ``torch.save``'d dict works when it has ``config`` (a dict with the timm ``backbone`` name) and ``model``
    (a state dict whose SAR-branch keys start with one of :data:`SAR_PREFIXES`).

    Args:
        path: checkpoint file or run folder.

    Returns:
        ``(backbone_name, state_dict)`` with the prefix removed (timm key names, classifier dropped); the
        backbone name is ``""`` when the checkpoint does not record one.

    Raises:
        CheckpointError: unreadable, or no SAR-branch weights found.
    """
    p = Path(path)
    ckpt: Any = None
    if p.is_dir() or (p.is_file() and p.suffix != ".safetensors"):
        try:
            from saropt.matching.checkpoint import load_checkpoint

            ckpt = load_checkpoint(p)
        except ImportError:  # pragma: no cover - matching package absent
            ckpt = None
        except CheckpointError:
            if p.is_dir():
                raise
            ckpt = None
    if ckpt is None:
        ckpt = _torch_load(p)
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"{p} is not a matching checkpoint (expected a dict with 'config' and 'model')")
    config = ckpt.get("config") if isinstance(ckpt.get("config"), Mapping) else {}
    name = str(config.get("backbone", "")) if config else ""
    if config and config.get("model") == "dense":
        raise CheckpointError(
            f"{p} is a dense-matcher checkpoint: it has no timm backbone to initialise a detector; "
            "use a bnn or pseudo_siamese run"
        )
    sd = _tensor_dict(ckpt.get("model", ckpt.get("state_dict", ckpt)))
    prefix = next((pre for pre in SAR_PREFIXES if any(k.startswith(pre) for k in sd)), "")
    if not prefix:
        raise CheckpointError(
            f"{p} holds no SAR-branch weights (no key starts with {', '.join(SAR_PREFIXES)}); "
            "pass a checkpoint written by 'saropt match train'"
        )
    out = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    # BNN: sar_branch.0.* is the backbone; a bare 'sar_branch.' prefix would also catch the Linear (1.*).
    out = {k: v for k, v in out.items() if not k.split(".")[0].isdigit() and not k.startswith(_HEADS)}
    return name, out


def _strip(sd: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in sd.items():
        changed = True
        while changed:
            changed = False
            for w in _WRAPPERS:
                if k.startswith(w):
                    k, changed = k[len(w):], True
        out[k] = v
    return {k: v for k, v in out.items() if not k.startswith(_HEADS)}


def load_into_backbone(model: Any, sd: Mapping[str, Any], source: str) -> tuple[int, tuple[str, ...]]:
    """Load timm-named backbone weights into ``model.backbone.body``.

    Keys the body lacks (e.g. ``layer4`` when ``out_indices`` stops earlier) are ignored; every body tensor must
    be present with a fitting shape (the first convolution's input channels are adapted).

    Args:
        model: a detector from :func:`~saropt.detection.models.build_detector`.
        sd: backbone state dict with timm key names.
        source: description for messages.

    Returns:
        ``(tensors_loaded, adapted_names)``.

    Raises:
        CheckpointError: missing tensors or shape mismatches.
    """
    body = model.backbone.body
    own = body.state_dict()
    src = dict(sd)
    for k in list(src):  # timm FeatureListNet flattens nested module names: 'stages.0' -> 'stages_0'
        if k not in own and k.replace(".", "_", 1) in own:
            src[k.replace(".", "_", 1)] = src.pop(k)
    adapted = []
    new = {}
    for k, t in own.items():
        if k not in src:
            continue
        v = src[k]
        if v.ndim == 4 and t.ndim == 4 and v.shape[1] != t.shape[1] and v.shape[0] == t.shape[0] \
                and v.shape[2:] == t.shape[2:]:
            v = adapt_first_conv(v, t.shape[1])
            adapted.append(k)
        if tuple(v.shape) != tuple(t.shape):
            raise CheckpointError(
                f"{source}: {k} has shape {tuple(v.shape)}, the detector backbone needs {tuple(t.shape)}; "
                "use the same backbone name as the checkpoint"
            )
        new[k] = v
    missing = [k for k in own if k not in new and not k.endswith("num_batches_tracked")]
    if missing:
        raise CheckpointError(
            f"{source} lacks {len(missing)} backbone tensors (e.g. {missing[0]}); "
            f"it was not trained with backbone {model.spec.backbone}"
        )
    body.load_state_dict(new, strict=False)
    return len(new), tuple(adapted)


def load_detector_weights(model: Any, sd: Mapping[str, Any], source: str) -> tuple[int, tuple[str, ...]]:
    """Load every tensor of a detector state dict whose name and shape fit; the whole backbone must fit.

    Returns:
        ``(tensors_loaded, adapted_names)``.

    Raises:
        CheckpointError: backbone tensors missing or of the wrong shape.
    """
    own = model.state_dict()
    new = {}
    adapted = []
    for k, t in own.items():
        if k not in sd:
            continue
        v = sd[k]
        if k.startswith("backbone.body.") and v.ndim == 4 and v.shape[1] != t.shape[1] and v.shape[0] == t.shape[0]:
            v = adapt_first_conv(v, t.shape[1])
            adapted.append(k)
        if tuple(v.shape) == tuple(t.shape):
            new[k] = v
    body_keys = [k for k in own if k.startswith("backbone.body.") and not k.endswith("num_batches_tracked")]
    missing = [k for k in body_keys if k not in new]
    if missing:
        raise CheckpointError(
            f"{source} does not fit the detector backbone ({len(missing)} tensors missing or of another shape, "
            f"e.g. {missing[0]}); use the same backbone as the checkpoint"
        )
    model.load_state_dict(new, strict=False)
    return len(new), tuple(adapted)


def initialise(model: Any, init: str) -> InitReport:
    """Initialise a detector by name (see module docstring).

    Args:
        model: a detector from :func:`~saropt.detection.models.build_detector`.
        init: ``"random"``, ``"osm:PATH"``, ``"osd:PATH"`` or a weight file path.

    Returns:
        What was loaded.

    Raises:
        ConfigError: an empty or malformed init string.
        CheckpointError: the weights are unreadable or do not fit.
    """
    total = len(model.state_dict())
    spec = model.spec
    s = (init or "").strip()
    if not s:
        raise ConfigError("init must be 'random', 'osm:<matching checkpoint>', 'osd:<detector checkpoint>' or a file")
    if s == "random":
        return InitReport(s, "random", 0, total)
    if s.startswith("osm:"):
        path = s[4:]
        name, sd = matching_sar_backbone(path)
        if name and name != spec.backbone:
            raise CheckpointError(
                f"matching checkpoint {path} has backbone {name!r} but the detector uses {spec.backbone!r}; "
                f"set model.backbone: {name}"
            )
        n, adapted = load_into_backbone(model, sd, f"matching checkpoint {path}")
        log.info("OSM: loaded %d SAR-branch backbone tensors from %s", n, path)
        return InitReport(s, "osm", n, total, adapted, name)
    if s.startswith("osd:"):
        from saropt.detection.checkpoint import load_detector_checkpoint

        ckpt = load_detector_checkpoint(s[4:])
        src_bb = str(ckpt["config"].get("model", {}).get("backbone", ""))
        n, adapted = load_detector_weights(model, ckpt["model"], f"detector checkpoint {ckpt['path']}")
        log.info("OSD: loaded %d of %d detector tensors from %s", n, total, ckpt["path"])
        return InitReport(s, "osd", n, total, adapted, src_bb)
    p = Path(s)
    if not p.exists():
        raise ConfigError(
            f"init {s!r} is not 'random', 'osm:PATH', 'osd:PATH' or an existing weight file"
        )
    raw = _torch_load(p)
    sd = _tensor_dict(raw)
    if not sd and isinstance(raw, Mapping):
        for key in ("model", "state_dict", "model_state", "net"):
            sd = _tensor_dict(raw.get(key))
            if sd:
                break
    if not sd:
        raise CheckpointError(f"{p} is not a state dict (a mapping of parameter names to tensors)")
    if any(k.startswith("backbone.body.") for k in sd):
        n, adapted = load_detector_weights(model, sd, str(p))
        return InitReport(s, "detector_file", n, total, adapted)
    n, adapted = load_into_backbone(model, _strip(sd), str(p))
    return InitReport(s, "backbone_file", n, total, adapted)
