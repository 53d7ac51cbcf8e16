"""SAR-optical patch matching: the Bridge Neural Network, baselines, and honest evaluation.

Modules (import what you need; torch is imported only by the modules that use it):

- :mod:`~saropt.matching.models`: ``build_model("bnn" | "pseudo_siamese" | "dense", backbone)``: two
  unshared timm branches; BNN sigmoid embeddings with ``d = ||a - b|| / sqrt(n)``; local backbone weight
  files; a dense matcher (per-pixel descriptors, FFT correlation) trained to localise.
- :mod:`~saropt.matching.losses`: BNN loss (with optional margin and InfoNCE term), pseudo-siamese BCE,
  in-batch negatives by rolling, overlap-aware negative weights, the dense matcher's offset cross-entropy.
- :mod:`~saropt.matching.baselines`: training-free NCC, mutual information, CFOG structural similarity.
- :mod:`~saropt.matching.scoring`: the ``Scorer`` interface shared by models and baselines.
- :mod:`~saropt.matching.views`: crop-and-resize views of patch pairs (what a model sees).
- :mod:`~saropt.matching.scene_crops`: training windows drawn anywhere in the training scenes, rebuilt from
  their patches.
- :mod:`~saropt.matching.metrics`: accuracy, precision, recall, F1, ROC-AUC, FPR95, threshold calibration,
  CMR@k px and RMSE, recall@k.
- :mod:`~saropt.matching.protocols`: balanced (the paper's), hard negatives, localisation, retrieval.
- :mod:`~saropt.matching.config`, :mod:`~saropt.matching.train`, :mod:`~saropt.matching.checkpoint`:
  YAML configuration, seeded and resumable training, checkpoints with config and data split hashes.
- :mod:`~saropt.matching.evaluate`: every protocol for checkpoints and baselines in one table (markdown,
  JSON).

Command line: ``saropt match train`` and ``saropt match eval`` (:mod:`saropt.cli.match`).
"""
