"""The ScaNN options of a TensorFlow Lite searcher, as Model Maker's Searcher API names them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InvalidInput

__all__ = ["ScannOptions", "DISTANCES", "DEFAULT_MAX_TOKENS", "SCANNED_ITEMS"]

#: How the index scores a query against an item (Model Maker's ``distance_measure``).
DISTANCES = ("dot_product", "squared_l2")
#: Items a query scans by default: the leaves searched hold about this many. Measured by
#: benchmarks/tflite.py on default-model vectors: recall@10 against exact search 1.000 at
#: 1,000 items (all leaves), 0.97 at 10,000 (half the leaves), 0.999 at 100,000 (16 of 316).
SCANNED_ITEMS = 5000
#: Token length of the text searcher's input: queries are short, and MiniLM converts in
#: half the time at 128 as at 256 (longer queries are cut, as the Task Library cuts them).
DEFAULT_MAX_TOKENS = 128


@dataclass(frozen=True)
class ScannOptions:
    """How the on-device ScaNN index is built.

    ``partitions``: leaves the items are split into (None: the square root of the item
    count, as Model Maker advises); ``partitions_to_search``: leaves a query looks into
    (None: the leaves holding about 5,000 items, all of them in a smaller library);
    ``product_quantization`` with ``dims_per_block`` dimensions per 16-centre codebook, or
    float vectors (exact scores) without it; ``distance``: "dot_product" (picsearch's
    vectors are unit length, so this is the cosine) or "squared_l2".
    """

    partitions: int | None = None
    partitions_to_search: int | None = None
    product_quantization: bool = False
    dims_per_block: int = 2
    distance: str = "dot_product"

    def checked(self, *, items: int, dim: int) -> ScannOptions:
        """These options with the defaults filled in for ``items`` vectors of ``dim``."""
        if self.distance not in DISTANCES:
            raise InvalidInput(f"distance {self.distance!r} is not one of {', '.join(DISTANCES)}")
        leaves = self.partitions or max(1, round(math.sqrt(items)))
        if not 1 <= leaves <= items:
            raise InvalidInput(
                f"partitions={leaves} must be between 1 and the item count ({items})"
            )
        search = self.partitions_to_search or min(
            leaves, max(1, math.ceil(leaves * SCANNED_ITEMS / items))
        )
        if not 1 <= search <= leaves:
            raise InvalidInput(
                f"partitions_to_search={search} must be between 1 and partitions ({leaves})"
            )
        if self.product_quantization and not (
            1 <= self.dims_per_block <= dim and dim % self.dims_per_block == 0
        ):
            raise InvalidInput(
                f"dims_per_block={self.dims_per_block} must divide the embedding size {dim}"
            )
        return ScannOptions(
            partitions=leaves,
            partitions_to_search=search,
            product_quantization=self.product_quantization,
            dims_per_block=self.dims_per_block,
            distance=self.distance,
        )
