"""SAR ship detection: datasets, detectors, OSM/OSD initialisation, box fusion, evaluation and scene prediction.

Modules (import them directly; nothing heavy is imported here):

- :mod:`~saropt.detection.boxes`: the box convention and small numpy box helpers (no torch).
- :mod:`~saropt.detection.datasets`: Pascal VOC XML, COCO JSON, YOLO txt and DOTA txt ship readers.
- :mod:`~saropt.detection.tiling`: chips of large images, box clipping, SAR-aware 8-bit normalisation.
- :mod:`~saropt.detection.models`: Faster R-CNN (FPN), RetinaNet and FCOS on timm backbones.
- :mod:`~saropt.detection.init`: backbone initialisation by name (``random``, ``osm:``, ``osd:``, a weight file).
- :mod:`~saropt.detection.fusion`: weighted boxes fusion, NMS and soft-NMS.
- :mod:`~saropt.detection.metrics`: VOC AP@0.5, COCO AP, precision-recall curves.
- :mod:`~saropt.detection.train`, :mod:`~saropt.detection.evaluate`, :mod:`~saropt.detection.predict`.

Box convention (every box in this package): ``(x1, y1, x2, y2)`` float pixels in *pixel-edge* coordinates, the
image spanning ``[0, W] x [0, H]`` (torchvision / COCO). That is saropt's pixel-centre coordinate plus 0.5: a box
that covers columns ``c0..c1`` (inclusive) has ``x1 = c0``, ``x2 = c1 + 1``. Conversions happen where files are
read and where boxes leave the package (GeoJSON).
"""
