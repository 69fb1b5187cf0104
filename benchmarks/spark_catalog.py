"""The build's serial step: catalog rows written per second, with and without what the
tasks read of each photo (capture time, camera, place; concepts).

    python benchmarks/spark_catalog.py [--rows 20000] [--rounds 3]

One shard of ``--rows`` rows shaped like the default model's (384-d joint, 1280-d
visual vectors) is written into a fresh catalog by ``build``'s own ``insert_rows``,
once without the ``photo`` and ``concepts`` columns (shards written before they
existed) and once with them (a photo with EXIF time, camera and place, and two
concepts), alternating, ``--rounds`` times. Prints the best round of each and the
ratio. The table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from picsearch.catalog import Catalog
from picsearch.concepts import Concept, Detections
from picsearch.photo_info import PhotoInfo
from picsearch.spark import shards
from picsearch.spark.catalog_rows import insert_rows
from picsearch.spark.records import concepts_json, photo_json

JOINT, VISUAL = 384, 1280
PHOTO = PhotoInfo(
    taken=dt.datetime(2019, 7, 14, 18, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    taken_source="exif",
    camera="Canon EOS 5D",
    latitude=38.72,
    longitude=-9.14,
    city="Lisbon",
    region="Lisbon",
    country="Portugal",
)
SEEN = Detections(
    concepts=(Concept("color:red", 1.0, "a red photo"), Concept("colourful", 0.8, "colourful")),
    detectors=("pixels", "faces"),
)


def shard(rows: int, with_photos: bool) -> Any:
    pa = shards.pyarrow()
    rng = np.random.default_rng(0)
    columns = {
        "id": pa.array(range(rows), pa.int64()),
        "uri": pa.array([f"/photos/{i:08d}.jpg" for i in range(rows)]),
        "size": pa.array([2_000_000] * rows, pa.int64()),
        "mtime_ns": pa.array([1_500_000_000 * 10**9] * rows, pa.int64()),
        "hash": pa.array([f"{i:032x}" for i in range(rows)]),
        "width": pa.array([4000] * rows, pa.int32()),
        "height": pa.array([3000] * rows, pa.int32()),
        "caption": pa.array([None] * rows, pa.string()),
        "metadata": pa.array(["{}"] * rows),
        "joint": shards.vector_column(rng.standard_normal((rows, JOINT), np.float32)),
        "visual": shards.vector_column(rng.standard_normal((rows, VISUAL), np.float32)),
    }
    if with_photos:
        columns["photo"] = pa.array([photo_json(PHOTO)] * rows)
        columns["concepts"] = pa.array([concepts_json(SEEN)] * rows)
    return pa.table(columns)


def rows_per_second(table: Any, folder: Path) -> float:
    catalog = Catalog(folder / "library.db", create=True)
    try:
        catalog.bind_model("default", "benchmark", JOINT, VISUAL)
        started = time.perf_counter()
        insert_rows(catalog, table, catalog.bump_generation())
        return table.num_rows / (time.perf_counter() - started)
    finally:
        catalog.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tables = {"rows only": shard(args.rows, False), "with photos": shard(args.rows, True)}
    best = dict.fromkeys(tables, 0.0)
    for round_ in range(args.rounds):
        for name, table in tables.items():
            with tempfile.TemporaryDirectory() as folder:
                rate = rows_per_second(table, Path(folder))
            best[name] = max(best[name], rate)
            print(f"round {round_ + 1}: {name}: {rate:,.0f} rows/s", file=sys.stderr)
    print(f"{'catalog pass of build':<28} {'rows/s (best of ' + str(args.rounds) + ')':>22}")
    for name, rate in best.items():
        print(f"{name:<28} {rate:>22,.0f}")
    print(f"{'with photos / rows only':<28} {best['with photos'] / best['rows only']:>22.2f}")


if __name__ == "__main__":
    main()
