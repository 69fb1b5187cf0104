"""Training a dual encoder: projection heads over frozen base encoders, on captioned images.

    from picsearch.train import evaluate_model, read_captions, train, TrainOptions

    captions = read_captions("captions_train2014.json", images="train2014/")
    result = train(captions, output="models/coco-dual", options=TrainOptions(epochs=30))
    # then: picsearch.open("photos.db", model=result.model_spec)
    val = read_captions("captions_val2014.json", images="val2014/")
    print(evaluate_model(result.model_spec, val).to_dict())

The model folder's format belongs to the encoders (``encoders.dual_format``):
training writes it through them.

Importing this package does not import torch; ``train()`` does.
"""

from __future__ import annotations

from .data import CaptionSet, read_captions
from .evaluate import RetrievalReport, evaluate_model
from .features import FeatureStore, image_features, text_features
from .loop import train
from .options import TrainOptions, TrainResult

__all__ = [
    "CaptionSet",
    "read_captions",
    "FeatureStore",
    "image_features",
    "text_features",
    "train",
    "TrainOptions",
    "TrainResult",
    "evaluate_model",
    "RetrievalReport",
]
