"""Embedding and index building at scale: the same jobs on one machine or on Spark.

    from picsearch import spark
    summary = spark.embed(["photos/", "shards/{0000..0099}.tar"], "emb/", engine="spark")
    spark.build("emb/", "big.db", engine="spark")        # catalog + ANN index
    picsearch.open("big.db").search("a red bicycle")

Nothing here imports Spark until ``engine="spark"`` is used (``picsearch[spark]``).
"""

from __future__ import annotations

from .build import BuildSummary, build
from .embed import ENGINES, EmbedSummary, embed

__all__ = ["embed", "build", "EmbedSummary", "BuildSummary", "ENGINES"]
