"""One shared suite for every ANN backend, checked against exact numpy search."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from picsearch import ann
from picsearch.ann import AH, IndexOptions, LiveIndex, Tree
from picsearch.errors import InvalidInput, MissingDependency

DIM = 64
N = 5000
K = 10

BACKENDS = {
    "exact": IndexOptions(backend="exact"),
    "scann": IndexOptions(backend="scann", tree=Tree(70, 10)),
    "faiss-ivf": IndexOptions(backend="faiss", tree=Tree(70, 10)),
    "faiss-sq8": IndexOptions(backend="faiss", tree=Tree(70, 10), quantization="int8"),
    "faiss-hnsw": IndexOptions(backend="faiss", kind="hnsw"),
    # "cost": auto chooses by counted work, never by a clock (tests must not time)
    "auto": IndexOptions(backend="auto", exact_below=1000, tune_by="cost"),
}


def clustered(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    """Unit vectors around 40 fixed centres (the centres do not depend on seed)."""
    centres = np.random.default_rng(1234).standard_normal((40, dim))
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_topk(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    scores = q @ x.T
    return ids[np.argsort(-scores, axis=1, kind="stable")[:, :k]]


def recall(truth: np.ndarray, got: np.ndarray) -> float:
    hits = [len(np.intersect1d(t, g)) / len(t) for t, g in zip(truth, got, strict=True)]
    return float(np.mean(hits))


@pytest.fixture(scope="module", autouse=True)
def one_faiss_thread():
    """OpenMP spin-waits badly on small shared CI machines (20x slower training
    on 2 busy cores); the results do not depend on the thread count."""
    try:
        import faiss
    except ImportError:  # the faiss tests then check the MissingDependency path
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = clustered(N, seed=1)
    ids = np.arange(N, dtype=np.int64) * 3 + 7  # ids that are not positions
    return x, ids, clustered(100, seed=2)


@pytest.fixture(scope="module", params=list(BACKENDS))
def built(request, data):
    x, ids, _ = data
    return request.param, ann.build(x, ids, BACKENDS[request.param])


def test_search_matches_exact(built, data):
    name, index = built
    x, ids, q = data
    scores, got = index.search(q, K)
    assert scores.shape == got.shape == (len(q), K)
    assert scores.dtype == np.float32 and got.dtype == np.int64
    assert np.all(np.diff(scores, axis=1) <= 1e-6), "best first"
    assert recall(exact_topk(x, ids, q, K), got) >= 0.9
    # scores are (close to) the true dot products of the returned vectors
    rows = x[np.searchsorted(ids, got)]
    assert np.allclose(scores, np.einsum("qd,qkd->qk", q, rows), atol=0.02)
    assert len(index) == N
    info = index.info()
    assert (
        info["size"] == N and info["dim"] == DIM and info["backend"] in ("exact", "scann", "faiss")
    )
    assert index.nbytes > 0


def test_subset_filter(built, data):
    name, index = built
    x, ids, q = data
    rng = np.random.default_rng(3)
    small = rng.choice(ids, 300, replace=False)
    _, got = index.search(q, K, subset=set(small.tolist()))
    inside = np.isin(ids, small)
    truth = exact_topk(x[inside], ids[inside], q, K)
    # small subsets are scored exactly (from the int8 copy: near-ties may swap)
    assert np.isin(got, small).all()
    assert recall(truth, got) >= (1.0 if name == "exact" else 0.97)
    # a large subset goes through the engine (over-fetch / selector), still exactly k
    large = rng.choice(ids, 3000, replace=False)
    index.exact_subset_max = 100
    try:
        _, got = index.search(q, K, subset=large)
    finally:
        del index.exact_subset_max
    assert np.isin(got, large).all() and (got >= 0).all()
    inside = np.isin(ids, large)
    assert recall(exact_topk(x[inside], ids[inside], q, K), got) >= 0.85
    # fewer than k in the subset (and unknown ids): pad with -1 / -inf
    scores, got = index.search(q[:3], K, subset=[int(ids[0]), int(ids[1]), 10**12])
    assert (got[:, :2] >= 0).all() and (got[:, 2:] == -1).all()
    assert np.isneginf(scores[:, 2:]).all()


@pytest.mark.parametrize("name", list(BACKENDS))
def test_add_remove(name, data):
    x, ids, q = data
    index = ann.build(x, ids, BACKENDS[name])
    _, before = index.search(q, K)
    gone = np.unique(before[:, 0])
    assert index.remove(gone) == len(gone)
    assert index.remove(gone) == 0  # already gone: skipped
    assert len(index) == N - len(gone)
    _, after = index.search(q, K)
    assert not np.isin(after, gone).any() and (after >= 0).all()
    # add: new vectors are found, ids default to max + 1
    new = clustered(50, seed=9)
    new_ids = index.add(new)
    assert new_ids[0] == ids.max() + 1
    _, got = index.search(new, 1)
    assert np.mean(got[:, 0] == new_ids) >= 0.9
    # a removed id can come back; a present one cannot be added twice
    index.add(x[:1], [int(gone[0])])
    with pytest.raises(InvalidInput, match="already in the index"):
        index.add(x[:1], [int(gone[0])])
    assert len(index) == N - len(gone) + 51
    index.rebuild()
    assert len(index) == N - len(gone) + 51 and index.drift()["tombstoned"] == 0
    _, got = index.search(new, 1)
    assert np.mean(got[:, 0] == new_ids) >= 0.9


def test_save_load_round_trip(built, data, tmp_path):
    name, index = built
    _, _, q = data
    folder = index.save(tmp_path / "idx")
    assert (folder / "manifest.json").exists()
    assert not list(folder.rglob("*.pkl")), "never pickle"
    loaded = ann.load(folder)
    assert type(loaded) is type(index) and len(loaded) == len(index)
    s1, i1 = index.search(q, K)
    s2, i2 = loaded.search(q, K)
    assert np.array_equal(i1, i2) and np.allclose(s1, s2)
    assert loaded.info()["options"] == index.info()["options"]


@pytest.mark.parametrize("name", list(BACKENDS))
def test_odd_sizes(name):
    opts = BACKENDS[name]
    q = clustered(4, seed=5)
    empty = ann.build(np.zeros((0, DIM), np.float32), None, opts)
    scores, got = empty.search(q, 3)
    assert (got == -1).all() and np.isneginf(scores).all() and len(empty) == 0
    one = ann.build(clustered(1, seed=6), [42], opts)
    scores, got = one.search(q, 5)
    assert (got[:, 0] == 42).all() and (got[:, 1:] == -1).all()
    x = clustered(37, seed=7)
    few = ann.build(x, None, opts)
    _, got = few.search(q, 50)  # k > n
    assert ((got >= 0).sum(axis=1) == 37).all()
    assert all(set(row) == set(range(37)) for row in got[:, :37])
    assert recall(exact_topk(x, np.arange(37), q, 5), got[:, :5]) >= 0.9
    empty.add(x[:5], [1, 2, 3, 4, 5])  # adding to an empty index works
    assert set(empty.search(q, 5)[1].ravel()) == {1, 2, 3, 4, 5}


@pytest.mark.parametrize("name", list(BACKENDS))
def test_save_load_before_the_engine_is_trained(name, tmp_path):
    """Too few vectors to train an engine: they live in the exact buffer, and still save."""
    x, q = clustered(37, seed=7), clustered(4, seed=5)
    few = ann.build(x, None, BACKENDS[name])
    loaded = ann.load(few.save(tmp_path / "few"))
    assert np.array_equal(loaded.search(q, 5)[1], few.search(q, 5)[1])


@pytest.mark.parametrize("name", ["exact", "scann", "faiss-ivf", "faiss-hnsw"])
def test_bad_input(name):
    x = clustered(20, seed=8)
    index = ann.build(x, None, BACKENDS[name])
    bad = x[:2].copy()
    bad[1, 3] = np.nan
    cases = [
        (lambda: index.add(np.zeros((2, DIM + 1))), "dimension 65"),
        (lambda: index.search(np.zeros((2, 3)), 2), "dimension 3"),
        (lambda: index.add(bad), "NaN or inf \\(rows 1\\)"),
        (lambda: index.search(np.full((1, DIM), np.inf), 2), "NaN or inf"),
        (lambda: ann.build(bad, None, BACKENDS[name]), "NaN or inf"),
        (lambda: index.add(x[:2], [100, 100]), "duplicate ids"),
        (lambda: index.add(x[:2], [5, 100]), "already in the index: 5"),
        (lambda: index.add(x[:2], [1.5, 2.0]), "must be integers"),
        (lambda: index.add(x[:2], [-3, 200]), ">= 0"),
        (lambda: index.add(x[:2], [300]), "1-D array of 2"),
        (lambda: index.search(x[:1], 0), "k=0 must be an integer >= 1"),
        (lambda: index.search(x[:1], 2.5), "k=2.5"),
        (lambda: index.search(x[:1], 2, subset=[0.5]), "subset must hold integer"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidInput, match=message):
            call()
    assert len(index) == 20, "a refused call changes nothing"


def test_options_are_validated():
    cases = [
        (lambda: Tree(100, 500), "num_leaves_to_search=500 must be between 1 and num_leaves=100"),
        (lambda: Tree(0, 1), "num_leaves=0 must be between 1"),
        (lambda: AH(dims_per_block=0), "dims_per_block=0"),
        (lambda: AH(2, anisotropic_threshold=1.5), "anisotropic_threshold=1.5"),
        (lambda: IndexOptions(backend="annoy"), "backend='annoy' must be one of"),
        (lambda: IndexOptions(distance="l2"), "distance='l2'"),
        (lambda: IndexOptions(quantization="int4"), "quantization='int4'"),
        (lambda: IndexOptions(reorder=-1), "reorder=-1 must be between 0"),
        (lambda: IndexOptions(recall_target=1.5), "recall_target=1.5"),
        (lambda: IndexOptions(backend="scann", kind="hnsw"), "kind='hnsw' applies to"),
        (lambda: IndexOptions(backend="exact", tree=Tree(4, 2)), "tree does not apply"),
        (lambda: IndexOptions(backend="faiss", ef_search=10), "ef_search applies to kind='hnsw'"),
        (lambda: IndexOptions(backend="faiss", kind="hnsw", quantization="int8"), "HNSW32 flat"),
        (lambda: IndexOptions.from_dict({"backend": "exact", "leaves": 3}), "unknown index option"),
        (lambda: IndexOptions(backend="scann", projection=8), "projection applies to backend="),
        (lambda: IndexOptions(backend="faiss", projection=0), "projection=0 must be between 1"),
        (lambda: ann.build(np.zeros((5, 4)), None, "annoy"), "backend='annoy'"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidInput, match=message):
            call()
    opts = IndexOptions(backend="faiss", quantization=AH(3))
    with pytest.raises(InvalidInput, match="dims_per_block=3 must divide dim=64"):
        ann.build(clustered(1200, seed=1), None, opts)
    with pytest.raises(InvalidInput, match="projection=65 must be at most dim=64"):
        ann.build(clustered(1200, seed=1), None, IndexOptions(backend="faiss", projection=65))
    full = IndexOptions(backend="scann", tree=Tree(10, 2), quantization=AH(2, None), reorder=50)
    assert IndexOptions.from_dict(full.to_dict()) == full


@pytest.mark.parametrize(("module", "backend"), [("faiss", "faiss"), ("scann", "scann")])
def test_missing_engine_names_the_extra(monkeypatch, module, backend):
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(MissingDependency, match=r"pip install 'picsearch\[ann\]'"):
        ann.build(clustered(10, seed=1), None, backend)


def test_auto_chooses_by_size_and_records_it(data):
    x, ids, q = data
    small = ann.build(x[:500], ids[:500])  # default options: auto
    assert small.info()["backend"] == "exact"
    assert (
        small.info()["auto"]["chose"] == "exact" and "exact_below" in small.info()["auto"]["reason"]
    )
    index = ann.build(x, ids, BACKENDS["auto"])
    info = index.info()
    assert info["backend"] in ("scann", "faiss")
    chosen = info["auto"]
    assert chosen["recall@10"] >= 0.95 and chosen["target_met"]
    assert info["recall"]["recall"] == chosen["recall@10"]
    assert info["options"]["tree"]["num_leaves_to_search"] == chosen["leaves_to_search"]
    assert recall(exact_topk(x, ids, q, K), index.search(q, K)[1]) >= 0.9
    assert index.measure_recall()["recall"] >= 0.9


@pytest.fixture(scope="module")
def auto_built(data):
    x, ids, _ = data
    return ann.build(x, ids, BACKENDS["auto"])


def test_auto_tunes_every_engine_shape_and_records_the_frontier(auto_built, data):
    pytest.importorskip("scann")
    pytest.importorskip("faiss")
    x, ids, q = data
    index = auto_built
    chosen = index.info()["auto"]
    # FAISS with sqrt(N) and 2 sqrt(N) leaves, 4-bit codes + re-rank and SQ8
    # codes; it meets the target, so ScaNN (the slower frontier and the
    # costlier build) is not built
    assert set(chosen["shapes"]) == {
        "faiss/71/AH1",
        "faiss/142/AH1",
        "faiss/71/SQ8",
        "faiss/142/SQ8",
    }
    built = [shape for shape in chosen["shapes"].values() if "skipped" not in shape]
    assert built and all(shape["tuning"] and shape["build_seconds"] > 0 for shape in built)
    frontier = chosen["frontier"]
    # tuned on queries held out of the build: the recall's lower confidence
    # bound meets the target, not just its mean
    assert chosen["held_out"] == 250
    assert frontier and all(s["recall_bound"] >= 0.95 for s in frontier)
    assert all(s["recall@10"] > s["recall_bound"] for s in frontier)
    # SQ8 codes first: at this size they need the least work, and the 4-bit
    # shapes, whose fixed part alone exceeds that, are not built
    assert frontier[0]["codes"] == "SQ8" and frontier[0]["reorder"] == 0
    for key in ("faiss/71/AH1", "faiss/142/AH1"):
        assert "budget" in chosen["shapes"][key].get("skipped", ""), chosen["shapes"][key]
    # cost mode: never timed, and the least counted work wins (fixed tie-break)
    assert all(s["batch_us"] is None and s["single_us"] is None for s in frontier)
    least = frontier[0]
    assert least["cost_us"] == min(s["cost_us"] for s in frontier)
    assert (chosen["engine"], chosen["num_leaves"]) == (least["engine"], least["num_leaves"])
    assert (chosen["leaves_to_search"], chosen["reorder"]) == (
        least["leaves_to_search"],
        least["reorder"],
    )
    assert index.backend == chosen["chose"] == least["engine"]
    assert index.options.tree.num_leaves_to_search == chosen["leaves_to_search"]
    assert index.options.reorder == chosen["reorder"] and chosen["target_met"]
    assert recall(exact_topk(x, ids, q, K), index.search(q, K)[1]) >= 0.9


def test_auto_cost_choice_is_deterministic_for_a_seed(data, monkeypatch):
    """FAISS trains reproducibly on one thread, so two builds give one choice."""
    pytest.importorskip("faiss")
    from picsearch.ann import auto

    monkeypatch.setattr(auto, "candidate_engines", lambda: ["faiss"])
    x, ids, _ = data
    first, second = (ann.build(x, ids, BACKENDS["auto"]).info()["auto"] for _ in range(2))
    for key in ("chose", "num_leaves", "leaves_to_search", "reorder", "recall@10", "frontier"):
        assert first[key] == second[key], key


def test_auto_ties_are_broken_by_a_fixed_rule(data):
    """Settings timed within 3 % of each other are a tie: the least counted work
    wins, whatever order they were measured in."""
    from picsearch.ann.auto import Setting, fastest

    x, ids, _ = data
    index = ann.build(x, ids, BACKENDS["faiss-ivf"])
    cheap, dear = Setting(index, 2, 40, 0.96, 5.0), Setting(index, 3, 40, 0.97, 9.0)
    for first, second in ((cheap, dear), (dear, cheap)):
        # times as a timing round would have left them: 2 % apart, either way round
        first.us_batch, first.us_single, second.us_batch, second.us_single = 10, 10, 10.2, 10.2
        assert fastest([first, second])[0] is cheap
    dear.us_batch = dear.us_single = 9.0  # clearly faster (10 % less): time decides
    assert fastest([cheap, dear])[0] is dear


def test_cosine_normalises_for_you(data):
    x, ids, q = data
    scale = np.random.default_rng(4).uniform(0.5, 3.0, (len(x), 1)).astype(np.float32)
    index = ann.build(x * scale, ids, IndexOptions(backend="exact", distance="cosine"))
    scores, got = index.search(q * 7, K)
    assert np.array_equal(got, exact_topk(x, ids, q, K))
    assert scores.max() <= 1.0 + 1e-5


def test_drift_and_needs_rebuild(data):
    x, ids, _ = data
    index = ann.build(x[:2000], ids[:2000], IndexOptions(backend="scann", rebuild_threshold=0.2))
    assert not index.needs_rebuild()
    index.add(x[2000:2300], ids[2000:2300])
    assert not index.needs_rebuild()
    index.remove(ids[:200])
    assert index.needs_rebuild()  # 500 changes on 2000 built
    index.rebuild()
    assert not index.needs_rebuild() and len(index) == 2100
    assert index.info()["drift"]["changed_since_build"] == 0
    # an engine too small to train keeps vectors in the exact buffer, then asks to train
    tiny = ann.build(x[:10], ids[:10], IndexOptions(backend="scann"))
    tiny.add(x[10:1500], ids[10:1500])
    assert tiny.needs_rebuild() and tiny.info()["engine"]["indexed"] == 0
    tiny.rebuild()
    assert tiny.info()["engine"]["indexed"] == 1500


def test_live_index_rebuilds_in_background(data):
    x, ids, q = data
    live = LiveIndex(ann.build(x[:3000], ids[:3000], IndexOptions(backend="faiss")))
    old = live.index
    thread = live.rebuild_in_background()
    # updates during the rebuild hit the old index now and are replayed on the new one
    live.add(x[3000:3100], ids[3000:3100])
    live.remove(ids[:10])
    assert live.search(q, K)[1].shape == (len(q), K)
    thread.join(timeout=60)
    assert live.index is not old and live.rebuilds == 1 and live.last_error is None
    assert len(live) == 3090
    _, got = live.search(x[3000:3100], 1)
    assert np.mean(got[:, 0] == ids[3000:3100]) >= 0.95
    assert not np.isin(live.search(q, K)[1], ids[:10]).any()
    assert live.info()["rebuilding"] is False


def test_factory_and_public_names():
    assert set(ann.backends()) == {"auto", "exact", "faiss", "scann"}
    assert ann.backend_class("exact").name == "exact"
    with pytest.raises(InvalidInput, match="backend='nope'"):
        ann.backend_class("nope")
    for name in ann.__all__:
        assert hasattr(ann, name)


def test_registered_backend_is_selectable(data):
    from picsearch.ann.exact import ExactEngine
    from picsearch.ann.registry import _BACKENDS

    class MyEngine(ExactEngine):
        name = "mine"

    x, ids, q = data
    with pytest.raises(InvalidInput, match="backend='mine'"):
        IndexOptions(backend="mine")
    ann.register_backend("mine", MyEngine)
    try:
        assert "mine" in ann.backends()
        index = ann.build(x[:500], ids[:500], IndexOptions(backend="mine"))
        assert isinstance(index.engine, MyEngine)
        assert ann.build(x[:500], ids[:500], "mine").backend == "mine"
    finally:
        _BACKENDS.pop("mine")


@pytest.mark.parametrize("name", ["scann", "faiss-ivf"])
def test_engine_reranks_natively_from_its_only_copy(name, data, tmp_path):
    """The engine re-ranks in C++ from its int8 copy; picsearch keeps none beside
    it, reads it back for subsets and rebuilds, and the whole index stays under
    half the float32 bytes."""
    pytest.importorskip(name.split("-")[0])
    x, ids, q = data
    index = ann.build(x, ids, BACKENDS[name].replace(reorder=200))
    info = index.info()
    engine = info["engine"]
    assert engine["native_rerank"] == 200 and engine["rerank"] == 0
    assert info["rerank_bytes_per_vector"] == 0 and engine["native_copy_bytes"] >= N * DIM
    assert info["bytes_per_vector"] <= 0.5 * 4 * DIM
    back, back_ids = index.vectors_and_ids()  # read back from the engine's copy
    assert np.abs(back - x[np.searchsorted(ids, back_ids)]).max() < 0.02
    truth = exact_topk(x, ids, q, K)
    got = index.search(q, K)[1]
    assert np.mean([len(np.intersect1d(t, g)) for t, g in zip(truth, got, strict=True)]) >= 9
    folder = index.save(tmp_path / "ix")
    assert not list(folder.glob("store_*.npy")) or all(
        np.load(f).shape[0] == 0 for f in folder.glob("store_*.npy")
    ), "no second copy on disk either"
    back = ann.load(folder)
    assert back.info()["engine"]["native_rerank"] == 200
    np.testing.assert_array_equal(back.search(q, K)[1], got)
    index.save(folder)  # saving over the folder a loaded index reads from is safe
    some = ids[:500]
    np.testing.assert_array_equal(
        back.search(q, K, subset=some)[1], index.search(q, K, subset=some)[1]
    )


def test_faiss_sq8_codes_are_the_only_copy_and_score_directly(data, tmp_path):
    """IVF-SQ8: residual codes scored while the leaves are scanned, no re-rank by
    anyone, no second copy, read back through a direct map; it survives a save."""
    pytest.importorskip("faiss")
    x, ids, q = data
    index = ann.build(x, ids, BACKENDS["faiss-sq8"])
    info = index.info()
    engine = info["engine"]
    assert engine["native_codes"] and engine["rerank"] == 0 and engine["native_rerank"] == 0
    assert info["rerank_bytes_per_vector"] == 0 and engine["native_copy_bytes"] >= N * DIM
    assert info["bytes_per_vector"] <= 0.5 * 4 * DIM and index._lean is not None
    back, back_ids = index.vectors_and_ids()
    assert np.abs(back - x[np.searchsorted(ids, back_ids)]).max() < 0.01
    scores, got = index.search(q, K)
    assert recall(exact_topk(x, ids, q, K), got) >= 0.9
    # the scores are the codes' own dot products, close to the exact ones
    exact_scores = np.take_along_axis(q @ x.T, np.searchsorted(ids, got), axis=1)
    assert np.abs(scores - exact_scores).max() < 0.01
    back = ann.load(index.save(tmp_path / "ix"))
    assert back.info()["engine"]["native_codes"]
    np.testing.assert_array_equal(back.search(q, K)[1], got)
    some = ids[::7]
    np.testing.assert_array_equal(
        back.search(q, K, subset=some)[1], index.search(q, K, subset=some)[1]
    )


def test_faiss_shapes_with_as_many_leaves_share_one_k_means(data, monkeypatch):
    """4-bit and SQ8 shapes trained on one sample with one leaf count reuse the
    first one's centroids; another sample trains its own."""
    pytest.importorskip("faiss")
    from picsearch.ann import faiss_backend, trained_leaves

    monkeypatch.setattr(trained_leaves, "_kept", type(trained_leaves._kept)())
    x, ids, _ = data
    trainings = []
    original = trained_leaves.remember_leaves

    def counting(key, centroids):
        trainings.append(key)
        original(key, centroids)

    monkeypatch.setattr(faiss_backend, "remember_leaves", counting)
    first = ann.build(x, ids, BACKENDS["faiss-ivf"])
    second = ann.build(x, ids, BACKENDS["faiss-sq8"])
    assert len(trainings) == 1
    centroids = [i.engine._parts[0].quantizer.reconstruct_n(0, 70) for i in (first, second)]
    np.testing.assert_array_equal(*centroids)
    ann.build(x[::-1].copy(), ids[::-1].copy(), BACKENDS["faiss-sq8"])  # another sample
    assert len(trainings) == 2


def test_leaf_recall_bounds_every_search_of_as_many_leaves(data):
    """No codes find a neighbour in a leaf not searched: the share of the true
    neighbours inside a query's p best leaves bounds the recall at p leaves."""
    pytest.importorskip("faiss")
    from picsearch.ann.faiss_backend import FaissEngine
    from picsearch.ann.leaf_bound import leaf_recall

    x, ids, q = data
    truth = np.searchsorted(ids, exact_topk(x, ids, q, K))  # positions of the rows
    options = BACKENDS["faiss-sq8"]
    curve = leaf_recall(FaissEngine(DIM, options).leaves(x), q, x, truth, 70)
    assert np.all(np.diff(curve) >= 0) and curve[-1] == 1.0 and curve[0] < 0.9
    for searched in (1, 2, 4, 8):
        index = ann.build(x, ids, options.replace(tree=Tree(70, searched)))
        measured = recall(exact_topk(x, ids, q, K), index.search(q, K)[1])
        assert measured <= curve[searched - 1] + 1e-9
        assert measured >= curve[searched - 1] - 0.05  # SQ8 codes lose little


def test_auto_does_not_build_shapes_whose_leaves_cannot_reach_the_target(auto_built):
    """Each FAISS shape on every dimension is judged by its leaves first; one that
    is built records the fewest leaves that could reach the target, and the
    frontier never searches fewer."""
    pytest.importorskip("faiss")
    chosen = auto_built.info()["auto"]
    for key, shape in chosen["shapes"].items():
        assert ("skipped" in shape) != ("least_leaves" in shape), key
        if "least_leaves" in shape:
            assert all(t[0] >= shape["least_leaves"] for t in shape["tuning"])
        elif shape["leaf_recall"] is not None:  # None: no leaf affordable, not judged
            assert shape["leaf_recall"] < 0.95


def test_auto_falls_back_to_a_graph_when_no_tree_reaches_the_target():
    """Vectors with no cluster structure: every tree needs more than 10 % of its
    leaves, so auto tunes an HNSW graph's efSearch by recall instead."""
    pytest.importorskip("faiss")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4000, 48)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[:50] + 0.05 * rng.standard_normal((50, 48)).astype(np.float32)
    ids = np.arange(len(x), dtype=np.int64)
    index = ann.build(x, ids, BACKENDS["auto"])
    chosen = index.info()["auto"]
    assert chosen["kind"] == "hnsw" and index.options.kind == "hnsw", chosen["reason"]
    assert chosen["ef_search"] in (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
    assert chosen["recall_bound"] >= 0.95 and chosen["target_met"]
    assert recall(exact_topk(x, ids, q, K), index.search(q, K)[1]) >= 0.9
    again = ann.build(x, ids, BACKENDS["auto"]).info()["auto"]
    assert again["ef_search"] == chosen["ef_search"]  # recall decides, not a clock


def test_auto_without_a_graph_searches_more_leaves_of_a_tree(monkeypatch):
    """FAISS alone, every shape judged unable to reach the target within 10 % of
    its leaves and no graph meeting it: one shape is built after all and
    searched over more of its leaves, so auto still answers."""
    pytest.importorskip("faiss")
    from picsearch.ann import auto

    monkeypatch.setattr(auto, "candidate_engines", lambda: ["faiss"])
    monkeypatch.setattr(auto, "tune_graph", lambda *args: None)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4000, 48)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = ann.build(x, None, BACKENDS["auto"])
    chosen = index.info()["auto"]
    assert index.backend == "faiss" and index.options.kind == "ivf"
    assert "beyond 10 %" in chosen["reason"] or "most accurate" in chosen["reason"]
    assert chosen["leaves_to_search"] > 0.1 * chosen["num_leaves"]


def test_search_is_batched_and_fast(data):
    x, ids, q = data
    index = ann.build(x, ids, "exact")
    start = time.perf_counter()
    index.search(np.repeat(q, 10, axis=0), K)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("name", list(BACKENDS))
def test_ids_lists_the_live_vectors(name):
    x = clustered(60, seed=8)
    index = ann.build(x, np.arange(100, 160), BACKENDS[name])
    index.remove([100, 159])
    index.add(clustered(1, seed=9), [7])
    assert set(index.ids().tolist()) == set(range(101, 159)) | {7}


def test_rebuild_swaps_the_engine_when_auto_picks_another(data):
    """auto on a small collection is exact; grown past exact_below, a rebuild
    lands on an ANN engine. The same object keeps working: its engine is one
    attribute, swapped with the compacted rows."""
    x, ids, q = data
    index = ann.build(x[:800], ids[:800], BACKENDS["auto"])
    assert index.backend == "exact"
    index.add(x[800:], ids[800:])
    index.remove(ids[:10])
    index.rebuild()
    assert index.backend in ("scann", "faiss") and index.info()["engine"]["indexed"] == N - 10
    _, got = index.search(q, K)
    assert recall(exact_topk(x[10:], ids[10:], q, K), got) >= 0.9
    # live updates on the swapped engine: ids, tombstones and vectors in step
    gone = np.unique(got[:, 0])
    assert index.remove(gone) == len(gone)
    new = clustered(20, seed=11)
    new_ids = index.add(new)
    _, after = index.search(new, 1)
    assert np.mean(after[:, 0] == new_ids) >= 0.9
    assert not np.isin(index.search(q, K)[1], gone).any()
    index.rebuild()  # and back through a rebuild again
    assert len(index) == N - 10 - len(gone) + 20


@pytest.mark.parametrize("name", ["scann", "faiss-ivf", "faiss-sq8", "faiss-hnsw"])
def test_lean_path_answers_like_the_general_one(name, data):
    """A plain float32 batch (or one query) goes straight to the engine; any
    other input, a filter or a tombstone takes the general path: same answers."""
    pytest.importorskip(name.split("-")[0])
    x, ids, q = data
    index = ann.build(x, ids, BACKENDS[name])
    assert index._lean is not None
    lean = index.search(q, K)
    general = index.search(q.astype(np.float64), K)  # not float32: the checked path
    np.testing.assert_array_equal(lean[1], general[1])
    np.testing.assert_allclose(lean[0], general[0], atol=1e-6)
    one = [index.search(q[i : i + 1], K)[1][0] for i in range(10)]
    np.testing.assert_array_equal(np.array(one), lean[1][:10])
    everything = index.search(q, K, subset=ids)[1]  # a filter letting all through
    assert recall(lean[1], everything) >= 0.95
    for bad in (np.nan, np.inf):  # one query or a batch holding one: the error names it
        for rows in (1, 3):
            queries = q[:rows].copy()
            queries[-1, 5] = bad
            with pytest.raises(InvalidInput, match=f"NaN or inf \\(rows {rows - 1}\\)"):
                index.search(queries, K)
    assert index.search(q[:2], np.int64(K))[1].shape == (2, K)  # numpy integers as k
    assert index.search(q[:2], N + 1)[1].shape == (2, N + 1)  # more than held: padded
    if name != "faiss-hnsw":  # the pre-bound path follows new settings at once
        tree = index.options.tree
        index.options = index.options.replace(tree=Tree(tree.num_leaves, tree.num_leaves))
        wide = index.search(q, K)
        np.testing.assert_array_equal(wide[1], index.search(q.astype(np.float64), K)[1])
        truth = exact_topk(x, ids, q, K)
        assert recall(truth, wide[1]) >= recall(truth, lean[1])
    index.remove(ids[:1])
    assert index._lean is None and int(ids[0]) not in index.search(x[:1], K)[1]


def test_faiss_lays_rows_out_by_leaf(data, tmp_path):
    """FAISS IVF holds its rows grouped by leaf, so a query's candidates sit side
    by side in the re-ranking copy, and codes each vector's residual to its leaf
    centroid; ids, vectors, removal and saving follow that layout."""
    faiss = pytest.importorskip("faiss")
    x, ids, q = data
    index = ann.build(x, ids, BACKENDS["faiss-ivf"])
    ivf = faiss.downcast_index(index.engine._index.base_index)
    assert ivf.by_residual
    vectors, held = index.vectors_and_ids()
    assert not np.array_equal(held, ids) and np.array_equal(np.sort(held), ids)
    original = x[np.searchsorted(ids, held)]
    assert np.abs(vectors - original).max() < 0.02  # each position holds its id's vector
    _, leaf = ivf.quantizer.search(original, 1)
    assert (np.diff(leaf[:, 0]) >= 0).all(), "positions grouped by leaf"
    _, got = index.search(x[:50], 1)
    assert np.mean(got[:, 0] == ids[:50]) >= 0.95
    index.remove(ids[:5])
    back = ann.load(index.save(tmp_path / "ix"))
    assert not np.isin(back.search(x[:5], K)[1], ids[:5]).any()
    np.testing.assert_array_equal(back.search(q, K)[1], index.search(q, K)[1])


def test_auto_tunes_on_held_out_queries_that_then_join_the_index(auto_built, data):
    """The tuning queries are left out of the build (their true neighbours are
    among the rest, as for queries the index never saw), then added: the
    index holds every vector, in the engine, with no second copy and no drift."""
    x, ids, q = data
    index = auto_built
    info = index.info()
    assert info["auto"]["held_out"] == 250 and info["recall"]["queries"] == 250
    assert len(index) == N and set(index.ids().tolist()) == set(ids.tolist())
    assert info["engine"]["indexed"] == N and info["rerank_bytes_per_vector"] == 0
    assert info["drift"]["changed_since_build"] == 0 and not index.needs_rebuild()
    assert index._lean is not None  # everything in the engine: the pre-bound path serves
    _, got = index.search(x, 1)  # the held-out rows are found like the others
    assert np.mean(got[:, 0] == ids) >= 0.97


def test_recall_bound_counts_the_spread_of_per_query_recall():
    from picsearch.ann.auto import CONFIDENCE_Z, hits_per_query, recall_bound

    truth = np.array([[1, 2, 3], [4, 5, -1]])
    got = np.array([[3, 9, 1], [5, -1, 7]])
    np.testing.assert_allclose(hits_per_query(truth, got), [2 / 3, 1 / 2])
    assert recall_bound(np.full(400, 0.96)) == pytest.approx(0.96)
    spread = np.tile([0.92, 1.0], 200)  # the same mean, recall uneven across queries
    margin = CONFIDENCE_Z * spread.std(ddof=1) / np.sqrt(400)
    assert recall_bound(spread) == pytest.approx(0.96 - margin) and margin > 0.003


def test_frontier_does_not_measure_settings_that_cannot_win(data):
    """Once a shape needs some work, another shape's settings counting more than
    it (twice it when timings choose) are not measured at all."""
    pytest.importorskip("faiss")
    from picsearch.ann import auto

    x, ids, q = data
    index = ann.build(x, ids, BACKENDS["faiss-ivf"])
    queries = auto.Queries(q, exact_topk(x, ids, q, K))
    found, tried = auto._frontier(index, queries, 0.9)
    assert len({s.reorder for s in found}) >= 3  # re-rank depths from a fine ladder
    cheapest = min(s.cost for s in found)
    pruned, tried_pruned = auto._frontier(index, queries, 0.9, budget=cheapest)
    assert all(auto.predicted_cost(index, s, r) <= cheapest for s, r, *_ in tried_pruned)
    assert len(tried_pruned) < len(tried)
    assert min(s.cost for s in pruned) == cheapest


def test_auto_tunes_scann_too_when_no_faiss_shape_meets_the_target(data):
    """ScaNN's shapes are built and tuned when FAISS's reach nothing within 10 %
    of their leaves (here a target no shape can meet), not otherwise."""
    pytest.importorskip("scann")
    pytest.importorskip("faiss")
    x, ids, _ = data
    options = IndexOptions(backend="auto", exact_below=1000, tune_by="cost", recall_target=0.9999)
    chosen = ann.build(x, ids, options).info()["auto"]
    faiss_shapes = {"faiss/71/AH1", "faiss/142/AH1", "faiss/71/SQ8", "faiss/142/SQ8"}
    both = faiss_shapes | {"scann/71/AH2", "scann/142/AH2"}
    assert set(chosen["shapes"]) == both


def test_faiss_codes_on_principal_directions(tmp_path):
    """Vectors whose energy sits in a few directions: FAISS's leaves and 4-bit
    codes work on those (auto finds how many), the re-ranking copy keeps every
    dimension, dot products and recall keep, and the index saves and filters."""
    pytest.importorskip("faiss")
    from picsearch.ann.auto import principal_dims

    rng = np.random.default_rng(5)
    basis = np.linalg.qr(rng.standard_normal((DIM, DIM)))[0][:12]  # 12 orthonormal rows
    x = (clustered(N, seed=1, dim=12) @ basis + 0.01 * rng.standard_normal((N, DIM))).astype(
        np.float32
    )
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(N, dtype=np.int64)
    assert principal_dims(x, seed=0) == 16  # 12 hold 98 %, rounded up to 8s
    assert principal_dims(clustered(N, seed=1), seed=0) is None  # spread over all 64
    q = x[:100] + 0.01
    options = IndexOptions(backend="faiss", tree=Tree(70, 10), quantization=AH(1), projection=16)
    index = ann.build(x, ids, options)
    assert "projection to 16 dims" in index.info()["engine"]["engine"]
    scores, got = index.search(q, K)
    assert recall(exact_topk(x, ids, q, K), got) >= 0.9
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", q, x[got]), atol=0.02)
    back = ann.load(index.save(tmp_path / "ix"))
    np.testing.assert_array_equal(back.search(q, K)[1], got)
    index.exact_subset_max = 100  # through the engine's filter
    some = ids[::3]
    assert np.isin(index.search(q, K, subset=some)[1], some).all()


def test_faiss_trains_its_leaves_on_enough_points_each(monkeypatch):
    """k-means on fewer than ~160 points per leaf costs recall on tight clusters:
    the training sample grows with the leaves past its floor."""
    pytest.importorskip("faiss")
    from picsearch.ann import faiss_backend

    monkeypatch.setattr(faiss_backend, "TRAIN_SAMPLE", 1000)
    engine = faiss_backend.FaissEngine(DIM, IndexOptions(backend="faiss", tree=Tree(20, 2)))
    x = clustered(5000, seed=1)
    sample = engine._training_sample(x)
    assert len(sample) == 20 * faiss_backend.TRAIN_PER_LEAF == 3200
    assert len({row.tobytes() for row in sample}) == len(sample)  # drawn without repeats


@pytest.mark.parametrize("name", ["scann", "faiss-ivf", "faiss-sq8"])
def test_rows_absorbed_into_a_build_stay_in_the_engines_only_copy(name, data):
    """auto's held-out queries join the index after tuning: the engine takes
    them, its re-ranking copy covers them (ScaNN re-reads its snapshot), and
    they count as built, not as changes."""
    pytest.importorskip(name.split("-")[0])
    x, ids, q = data
    index = ann.build(x[:4000], ids[:4000], BACKENDS[name])
    index._absorb(x[4000:], ids[4000:])
    info = index.info()
    assert info["engine"]["indexed"] == N and info["rerank_bytes_per_vector"] == 0
    assert info["drift"]["changed_since_build"] == 0 and index._lean is not None
    vectors, held = index.vectors_and_ids()
    # read back from the engine (int8 ranges trained without these rows: a
    # coordinate beyond them is clipped)
    error = np.abs(vectors - x[np.searchsorted(ids, held)])
    assert error.mean() < 0.002 and error.max() < 0.1
    _, got = index.search(x[4000:], 1)
    assert np.mean(got[:, 0] == ids[4000:]) >= 0.95


def test_scann_leaves_agree_with_the_queries_dot_products():
    """Many tight clusters per leaf: ScaNN assigns vectors to leaves by L2 and
    queries by dot product, which agree only with unit-norm centroids (plain
    k-means centroids: recall 0.71 at one leaf of 100, however deep the re-rank)."""
    pytest.importorskip("scann")
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((200, DIM)).astype(np.float32)

    def draw(m: int) -> np.ndarray:
        x = centres[rng.integers(0, 200, m)] + rng.standard_normal((m, DIM), dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    x, q = draw(10_000), draw(200)
    ids = np.arange(len(x), dtype=np.int64)
    options = IndexOptions(backend="scann", tree=Tree(100, 1), reorder=200, reorder_dtype="float32")
    _, got = ann.build(x, ids, options).search(q, K)
    assert recall(exact_topk(x, ids, q, K), got) >= 0.85


@pytest.mark.parametrize("name", ["scann", "faiss-sq8", "faiss-hnsw"])
def test_cosine_queries_of_any_length_rank_and_score_as_unit_ones(name, data):
    """The pre-bound path hands an inner-product engine the query as it is and
    divides the scores by its norm: long, short and unit queries answer alike,
    batched and one at a time; a zero query finds nothing above score 0."""
    pytest.importorskip(name.split("-")[0])
    x, ids, q = data
    index = ann.build(x, ids, BACKENDS[name].replace(distance="cosine"))
    assert index._lean is not None
    unit = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    want = index.search(unit, K)
    for scale in (1e-6, 0.02, 0.37, 3.0, 1e3, 1e5, 1e7):  # outside 0.01-1e4: normalised
        got = index.search((unit * scale).astype(np.float32), K)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_allclose(got[0], want[0], atol=1e-5)
        one = index.search((unit[:1] * scale).astype(np.float32), K)
        np.testing.assert_array_equal(one[1], want[1][:1])
        np.testing.assert_allclose(one[0], want[0][:1], atol=1e-5)
    zero = index.search(np.zeros((2, x.shape[1]), np.float32), K)
    assert zero[1].shape == (2, K) and np.all(zero[0] == 0)
