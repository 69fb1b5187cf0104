"""CLIP-family models in Immich's ONNX layout (``--model clip:/path/to/folder``), run
with ONNX Runtime and the ``tokenizers`` package alone: no torch, no transformers.

``immich_folder`` checks the files; each ONNX graph is checked against the config
when it is opened (its inputs, the tokens and pixels it takes, the width of its
vectors), and a graph that disagrees is refused naming the file. Immich exports
its graphs for one item at a time, so a fixed batch of 1 is run item by item.
CLIP image vectors also serve image-to-image search, so ``visual_dim`` is None.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InvalidInput
from . import onnx_export
from .base import ImageEmbeddings, normalize, query_model_description
from .immich_folder import clean_text, read_immich_folder
from .immich_graphs import write_query_graphs
from .model_checks import GraphSide, graph_sides, sampled_digest

__all__ = ["ImmichEncoder", "TEXT_INPUTS"]

#: The text inputs of each flavour: OpenCLIP and SigLIP, and M-CLIP (multilingual).
TEXT_INPUTS = (("text",), ("input_ids", "attention_mask"))
_INTEGER_TYPES = {"tensor(int32)": np.int32, "tensor(int64)": np.int64}


class ImmichEncoder:
    """A CLIP-family dual encoder from an Immich model folder."""

    visual_dim: int | None = None

    def __init__(
        self, path: str | os.PathLike[str], *, name: str | None = None, threads: int | None = None
    ) -> None:
        found = read_immich_folder(path, name=name)
        self.found = found
        self.folder = found.path
        self.dim = found.dim
        self.images = found.images
        self.decode_size = found.images.size
        self.threads = threads
        parts = [found.path / "config.json", found.tokenizer_file, found.visual_onnx]
        digest = sampled_digest([*parts, found.textual_onnx])
        self.model_id = f"immich:{found.name}-{digest}"
        self._lock = threading.RLock()
        self._sessions: dict[str, Any] = {}
        self._tokenizer: Any = None

    def __repr__(self) -> str:
        return f"ImmichEncoder({str(self.folder)!r}, model_id={self.model_id!r})"

    # --------------------------------------------------------------- loading

    def _session(self, kind: str) -> Any:
        """The checked session of the "visual" or "textual" graph, opened once."""
        with self._lock:
            if kind not in self._sessions:
                path = self.found.visual_onnx if kind == "visual" else self.found.textual_onnx
                try:
                    session = onnx_export.open_session(path, threads=self.threads)
                except Exception as exc:  # onnxruntime raises its own exception types
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc
                    raise InvalidInput(f"{path}: not a readable ONNX model ({first})") from None
                check = self._check_visual if kind == "visual" else self._check_textual
                check(path, *graph_sides(session))
                self._sessions[kind] = session
            return self._sessions[kind]

    def _check_output(self, path: Path, outputs: list[GraphSide]) -> None:
        width = outputs[0].fixed(-1) if outputs else None
        if not outputs or (width is not None and width != self.dim):
            raise InvalidInput(
                f"{path}: gives {width}-d vectors, not the {self.dim} of config.json's embed_dim"
            )

    def _check_visual(self, path: Path, inputs: list[GraphSide], outputs: list[GraphSide]) -> None:
        size = self.images.size
        image = inputs[0] if len(inputs) == 1 else None
        sizes = (image.fixed(1), image.fixed(2), image.fixed(3)) if image else ()
        if (
            image is None
            or len(image.shape) != 4
            or image.type != "tensor(float)"
            or any(
                got is not None and got != want
                for got, want in zip(sizes, (3, size, size), strict=True)
            )
        ):
            taken = [f"{i.name} {list(i.shape)} {i.type}" for i in inputs]
            raise InvalidInput(
                f"{path}: takes {taken}, not one (n, 3, {size}, {size}) float image "
                "(the size in visual/preprocess_cfg.json)"
            )
        self._check_output(path, outputs)

    def _check_textual(self, path: Path, inputs: list[GraphSide], outputs: list[GraphSide]) -> None:
        names = tuple(i.name for i in inputs)
        length = self.found.context_length
        if names not in TEXT_INPUTS or any(i.type not in _INTEGER_TYPES for i in inputs):
            raise InvalidInput(
                f"{path}: takes {[f'{i.name} {i.type}' for i in inputs]}, not integer token ids "
                "('text', or 'input_ids' and 'attention_mask')"
            )
        for side in inputs:
            tokens = side.fixed(1)
            if len(side.shape) != 2 or (tokens is not None and tokens != length):
                raise InvalidInput(
                    f"{path}: input {side.name} takes {list(side.shape)} tokens, not the "
                    f"{length} of config.json's text_cfg.context_length"
                )
        self._check_output(path, outputs)

    def tokenizer(self) -> Any:
        """The folder's tokenizer, padding and truncating to the context length (as Immich)."""
        with self._lock:
            if self._tokenizer is None:
                from tokenizers import Tokenizer

                path = self.found.tokenizer_file
                try:
                    tokenizer = Tokenizer.from_file(str(path))
                except Exception as exc:  # tokenizers raises a plain Exception
                    raise InvalidInput(f"{path}: not a readable tokenizer ({exc})") from None
                pad_id = tokenizer.token_to_id(self.found.pad_token)
                if pad_id is None:
                    raise InvalidInput(
                        f"{path}: has no token {self.found.pad_token!r}, the pad_token of "
                        "textual/tokenizer_config.json"
                    )
                length = self.found.context_length
                tokenizer.enable_padding(
                    length=length, pad_token=self.found.pad_token, pad_id=pad_id
                )
                tokenizer.enable_truncation(max_length=length)
                self._tokenizer = tokenizer
            return self._tokenizer

    # --------------------------------------------------------------- encoder

    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Token ids (and the attention mask), as the text graph takes them."""
        canonical = self.found.canonicalize
        encoded = self.tokenizer().encode_batch(
            [clean_text(t, canonicalize=canonical) for t in texts]
        )
        session = self._session("textual")
        arrays = {
            "text": [e.ids for e in encoded],
            "input_ids": [e.ids for e in encoded],
            "attention_mask": [e.attention_mask for e in encoded],
        }
        return {
            side.name: np.asarray(arrays[side.name], dtype=_INTEGER_TYPES[side.type])
            for side in graph_sides(session)[0]
        }

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed_texts takes a list of strings")
        if not len(texts):
            return np.zeros((0, self.dim), np.float32)
        feed = self.tokenize([str(t) for t in texts])
        return normalize(self._run("textual", feed, len(texts)))

    def _run(self, kind: str, feed: dict[str, np.ndarray], count: int) -> np.ndarray:
        """The graph's first output for ``count`` items, one at a time if its batch is fixed."""
        session = self._session(kind)
        one_by_one = graph_sides(session)[0][0].fixed(0) == 1
        if not one_by_one:
            return np.asarray(session.run(None, feed)[0], np.float32).reshape(count, -1)
        rows = [
            session.run(None, {name: value[i : i + 1] for name, value in feed.items()})[0]
            for i in range(count)
        ]
        return np.asarray(np.concatenate(rows), np.float32).reshape(count, -1)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """One image to (3, S, S) float32 as Immich's visual encoder makes it."""
        return self.images.preprocess(image)

    def prepare_images(self) -> None:
        """Open (and check) both graphs and the tokenizer before indexing, so that a bad
        text side is said now rather than at the first search."""
        self._session("visual")
        self._session("textual")
        self.tokenizer()

    def embed_arrays(self, batch: np.ndarray) -> ImageEmbeddings:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        expected = (3, *self.images.output_hw)
        if batch.ndim != 4 or batch.shape[1:] != expected:
            raise ValueError(
                f"expected a (n, {expected}) batch from preprocess(), got {batch.shape}"
            )
        if not len(batch):
            return ImageEmbeddings(joint=np.zeros((0, self.dim), np.float32))
        name = graph_sides(self._session("visual"))[0][0].name
        return ImageEmbeddings(joint=normalize(self._run("visual", {name: batch}, len(batch))))

    def embed_images(self, images: list[Image.Image]) -> ImageEmbeddings:
        if not images:
            return self.embed_arrays(np.zeros((0, 3, *self.images.output_hw), np.float32))
        return self.embed_arrays(np.stack([self.preprocess(image) for image in images]))

    # ----------------------------------------------------------------- export

    def export_query_model(self, folder: Path) -> dict[str, Any]:
        """The two graphs with the searcher's input names, and the tokenizer with the
        cleaning and padding built in (see ``immich_graphs``)."""
        self.prepare_images()  # refuse graphs that disagree with the config first
        write_query_graphs(self.found, self.tokenizer(), folder)
        return query_model_description(["joint"], self.images.manifest())
