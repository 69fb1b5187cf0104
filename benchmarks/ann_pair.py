"""auto's index against the raw FAISS index of the same shape, alone in one process.

benchmarks/ann.py times dozens of indexes in one process; this times only
picsearch's `auto` index (through `index.search`, and through FAISS's own call
on the index auto built) and the raw FAISS index of the shape auto chose, built
by hand with FAISS's defaults, in interleaved rounds (best of), batches of
1,000 and one query per call, on one thread. It tells the cost of picsearch's
wrapper and of auto's training apart from the load of a crowded process.

    python benchmarks/ann_pair.py                    # clustered 300,000 x 128
    python benchmarks/ann_pair.py --rounds 9
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before numpy/faiss load their thread pools

import argparse  # noqa: E402

from ann import built, clustered, recall, time_search  # noqa: E402  (beside this script)

from picsearch import ann  # noqa: E402

K = 10


def main() -> None:
    import faiss

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    x, q = clustered(300_000, 1000)
    index, _ = built(lambda: ann.build(x, None, "auto"))
    chosen = index.info()["auto"]
    if chosen.get("engine") != "faiss" or chosen.get("codes") != "SQ8":
        raise SystemExit(f"auto chose {chosen.get('engine')} {chosen.get('codes')}: not IVF-SQ8")
    leaves, searched = chosen["num_leaves"], chosen["leaves_to_search"]
    raw = faiss.index_factory(x.shape[1], f"IVF{leaves},SQ8", faiss.METRIC_INNER_PRODUCT)
    built(lambda: (raw.train(x), raw.add(x)))
    params = faiss.SearchParametersIVF(nprobe=searched)
    engine = index.engine._index
    systems = {
        "picsearch auto, index.search": lambda r: index.search(r, K),
        "the index auto built, FAISS's own call": lambda r: engine.search(r, K, params=params),
        f"raw FAISS IVF{leaves},SQ8 nprobe={searched}": lambda r: raw.search(r, K, params=params),
    }
    exact = faiss.knn(q, x, K, metric=faiss.METRIC_INNER_PRODUCT)[1]
    best = dict.fromkeys(systems, (0.0, 0.0))
    names = list(systems)
    for turn in range(args.rounds):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            batch, single = time_search(systems[name], systems[name], q, len(q))
            best[name] = (max(best[name][0], batch), max(best[name][1], single))
    print("| system | recall@10 | QPS batch | QPS single |\n|---|---:|---:|---:|")
    recalls = {
        names[0]: recall(exact, index.search(q, K)[1]),
        names[2]: recall(exact, raw.search(q, K, params=params)[1]),
    }
    for name, (batch, single) in best.items():
        shown = f"{recalls[name]:.3f}" if name in recalls else "(positions)"
        print(f"| {name} | {shown} | {batch:.0f} | {single:.0f} |")
    mine, theirs = best[names[0]], best[names[2]]
    ratios = f"batches {mine[0] / theirs[0]:.2f}x, one per call {mine[1] / theirs[1]:.2f}x"
    print(f"\nauto / raw: {ratios}")


if __name__ == "__main__":
    main()
