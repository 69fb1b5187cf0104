"""Training a dual encoder: projection heads over frozen base encoders, on captioned images.

    from picsearch.train import read_captions, train, TrainOptions

    captions = read_captions("captions_train2014.json", images="train2014/")
    result = train(captions, output="models/coco-dual", options=TrainOptions(epochs=30))
    # then: picsearch.open("photos.db", model=result.model_spec)

Importing this package does not import torch; ``train()`` does.
"""

from __future__ import annotations

from .data import CaptionSet, read_captions
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
]
