"""Relevance people can trust: weak matches flagged, ``min_score``, "no good match" in
Python, the CLI and the HTTP API; and the quality sets' fixed tuning / held-out halves."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

import picsearch
from picsearch.cli import main
from picsearch.encoders.default import WEAK_CUTOFF, WEAK_CUTOFFS, DefaultEncoder
from picsearch.encoders.relevance import weak_cutoff_of

pytest.importorskip("skimage")
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
NONSENSE = "qwfp zxcv"
#: A handful of the sample photos: enough for a cat to stand out, quick to index.
#: The library below is indexed with --concepts off: its hits are judged by that level's cutoff.
OFF_CUTOFF = WEAK_CUTOFFS["off"]
PHOTOS = ["chelsea", "coffee", "motorcycle", "rocket", "clock", "page", "brick", "grass"]


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Path:
    """The default model's library of a few sample photos (no concepts: quick)."""
    from picsearch.samples import write_sample_photos

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PICSEARCH_CACHE", str(model_cache))
        folder = tmp_path_factory.mktemp("relevance")
        write_sample_photos(folder, PHOTOS)
        db = folder / "lib.db"
        with picsearch.open(db, model="default") as lib:
            assert lib.index(folder, concepts="off").added == len(PHOTOS)
        return db


@pytest.fixture
def lib(sample_db: Path):
    with picsearch.open(sample_db) as library:
        yield library


def stem(hit: picsearch.Hit) -> str:
    return Path(hit.path).stem


# ----------------------------------------------------------------- Python


def test_the_default_model_carries_a_cutoff_per_concepts_level() -> None:
    encoder = DefaultEncoder()
    assert weak_cutoff_of(encoder) == WEAK_CUTOFF == WEAK_CUTOFFS["fast"]
    assert weak_cutoff_of(encoder, level="off") == OFF_CUTOFF < WEAK_CUTOFF
    assert weak_cutoff_of(encoder, level="someday") == WEAK_CUTOFF
    assert weak_cutoff_of(object()) is None


def test_a_good_match_is_not_weak_and_the_rest_are_flagged_by_score(lib) -> None:
    hits = lib.search("a cat", k=len(PHOTOS))
    assert stem(hits[0]) == "chelsea" and not hits[0].weak
    assert [h.weak for h in hits] == [h.score < OFF_CUTOFF for h in hits]
    assert any(h.weak for h in hits)  # the coffee is no cat
    # Judged by the cutoff of the level the library was indexed at, not the default's.
    assert any(OFF_CUTOFF <= h.score < WEAK_CUTOFF for h in hits)


def test_nonsense_is_all_weak_matches(lib) -> None:
    hits = lib.search(NONSENSE, k=5)
    assert len(hits) == 5 and all(h.weak for h in hits)


def test_min_score_drops_the_hits_under_it_and_renumbers(lib) -> None:
    every = lib.search("a cat", k=len(PHOTOS))
    bar = (every[0].score + every[1].score) / 2
    kept = lib.search("a cat", k=len(PHOTOS), min_score=bar)
    assert [(h.rank, stem(h)) for h in kept] == [(1, "chelsea")]
    assert lib.search(NONSENSE, k=5, min_score=OFF_CUTOFF) == []


def test_image_queries_are_never_flagged_weak(lib, sample_db: Path) -> None:
    hits = lib.search(image=sample_db.parent / "brick.jpg", k=len(PHOTOS))
    assert not any(h.weak for h in hits)


@pytest.mark.parametrize("bad", [float("nan"), 2.5, -3, "high", True])
def test_a_min_score_that_is_not_a_score_is_refused(lib, bad: object) -> None:
    with pytest.raises(picsearch.InvalidInput, match="min_score must be a score from -1 to 2"):
        lib.search("a cat", min_score=bad)


def test_a_model_without_a_cutoff_flags_nothing_and_min_score_still_drops(
    tmp_path: Path, colour_folder: Path
) -> None:
    with picsearch.open(tmp_path / "tiny.db", model="tiny") as lib:
        lib.index(colour_folder)
        hits = lib.search("something red", k=10)
        assert hits and not any(h.weak for h in hits)
        top = hits[0].score
        assert [h.score for h in lib.search("something red", k=10, min_score=top)] == [top]


# ----------------------------------------------------------------- CLI


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_says_no_good_match_and_sets_weak_matches_apart(sample_db: Path, capsys) -> None:
    code, out, err = run(capsys, "search", NONSENSE, "--db", str(sample_db), "-k", "3")
    assert code == 0
    assert f"no good match for '{NONSENSE}'; showing the closest weak matches" in err
    lines = out.splitlines()
    assert lines[0].startswith("--- weak matches") and len(lines) == 4


def test_cli_lists_good_matches_before_the_separator(sample_db: Path, capsys) -> None:
    code, out, err = run(capsys, "search", "a cat", "--db", str(sample_db), "-k", "8")
    lines = out.splitlines()
    assert code == 0 and "no good match" not in err
    assert lines[0].endswith("chelsea.jpg")
    split = next(i for i, line in enumerate(lines) if line.startswith("--- weak matches"))
    scores = [float(line.split()[1]) for line in lines if not line.startswith("---")]
    assert all(s >= OFF_CUTOFF for s in scores[:split]) and scores[split] < OFF_CUTOFF


def test_cli_json_has_weak_on_every_hit(sample_db: Path, capsys) -> None:
    _, out, _ = run(capsys, "search", "a cat", "--db", str(sample_db), "--json")
    hits = json.loads(out)
    assert hits[0]["weak"] is False and all(isinstance(h["weak"], bool) for h in hits)


def test_cli_min_score_drops_weak_matches_and_says_why_none_is_left(
    sample_db: Path, capsys
) -> None:
    code, out, err = run(
        capsys, "search", NONSENSE, "--db", str(sample_db), "--min-score", str(OFF_CUTOFF)
    )
    assert code == 0 and out == ""
    assert f"no photo scored {OFF_CUTOFF:g} or more: lower --min-score" in err


def test_cli_refuses_a_bad_min_score_in_one_line(sample_db: Path, capsys) -> None:
    code, out, err = run(capsys, "search", "a cat", "--db", str(sample_db), "--min-score", "9")
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and "min_score must be a score" in err


# ----------------------------------------------------------------- HTTP


@pytest.fixture
def client(sample_db: Path, tmp_path: Path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from picsearch.server import create_app

    app = create_app(sample_db, thumbnail_dir=tmp_path / "thumbs")
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


def test_http_flags_weak_hits_and_no_good_match(client) -> None:
    body = client.get("/api/search", params={"q": NONSENSE, "k": 3}).json()
    assert body["no_good_match"] is True and [h["weak"] for h in body["hits"]] == [True] * 3
    body = client.get("/api/search", params={"q": "a cat", "k": 3}).json()
    assert body["no_good_match"] is False and body["hits"][0]["weak"] is False


def test_http_min_score_drops_hits_and_is_checked(client) -> None:
    params = {"q": NONSENSE, "k": 3, "min_score": OFF_CUTOFF}
    body = client.get("/api/search", params=params).json()
    assert body["hits"] == [] and body["no_good_match"] is False
    assert body["query"]["min_score"] == OFF_CUTOFF
    response = client.get("/api/search", params={"q": "a cat", "min_score": 7})
    assert response.status_code == 400 and "min_score" in response.json()["error"]["message"]


# ----------------------------------------------------------------- the halves


@pytest.fixture(scope="module")
def quality():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import quality as module  # benchmarks/quality.py
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_the_split_is_deterministic_whatever_the_order(quality) -> None:
    keys = [f"photo-{i}" for i in range(40)]
    shuffled = keys[:]
    random.Random(7).shuffle(shuffled)
    halves = quality.split_halves(keys)
    assert halves == quality.split_halves(shuffled)
    assert sorted(halves.values()).count("tuning") == 20


def test_captions_are_split_by_photo_as_documented(quality) -> None:
    captions = quality.captions()
    by_half = {h: {c.photo for c in captions if c.half == h} for h in quality.HALVES}
    assert not by_half["tuning"] & by_half["held_out"]
    assert by_half["held_out"] == {
        "astronaut", "china", "retina", "coins", "coffee",
        "gravel", "rocket", "moon", "horse", "immunohistochemistry",
    }  # fmt: skip
    assert all(c.half == "held_out" for c in captions if c.new)


def test_concept_queries_and_nonsense_halves_are_disjoint(quality) -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from concepts import QUERIES
    finally:
        sys.path.remove(str(BENCHMARKS))
    new = quality.quality_sets()["new_concept_queries"]
    queries = {q: (g, set(r)) for q, (g, r) in {**QUERIES, **new}.items()}
    halves = quality.split_concept_queries(queries)
    assert not set(halves["tuning"]) & set(halves["held_out"])
    assert set(halves["tuning"]) | set(halves["held_out"]) == set(queries)
    assert set(new) <= set(halves["held_out"])
    nonsense = quality.nonsense()
    assert len(nonsense["tuning"]) == len(nonsense["held_out"]) == 15
    assert not set(nonsense["tuning"]) & set(nonsense["held_out"])


def test_an_exported_searcher_judges_hits_as_its_library(
    sample_db: Path, tmp_path: Path, model_cache: Path, capsys, monkeypatch
) -> None:
    from picsearch.searcher import TextSearcher
    from picsearch.searcher.export import export_searcher

    monkeypatch.setenv("PICSEARCH_CACHE", str(model_cache))
    output = tmp_path / "photos.searcher"
    with picsearch.open(sample_db) as lib:
        assert lib.weak_cutoff() == OFF_CUTOFF  # the level the library was indexed at
        export_searcher(lib, output)
        expected = {q: [(stem(h), h.weak) for h in lib.search(q, k=5)] for q in ("a cat", NONSENSE)}
    searcher = TextSearcher.create_from_file(output)
    for query, flags in expected.items():
        assert [(stem(h), h.weak) for h in searcher.search(query, k=5).hits()] == flags
    assert all(weak for _, weak in expected[NONSENSE]) and not expected["a cat"][0][1]
    assert searcher.search(NONSENSE, k=5, min_score=OFF_CUTOFF).hits() == []
    code, out, err = run(
        capsys, "search", NONSENSE, "--searcher", str(output), "-k", "3", "--min-score", "-1"
    )
    assert code == 0 and out.splitlines()[0].startswith("--- weak matches")
    assert f"no good match for '{NONSENSE}'" in err


# ----------------------------------------------------------------- the benchmark's levers


def test_the_query_bridge_re_expresses_a_query_in_the_class_bank(quality) -> None:
    import numpy as np

    bank = np.eye(4, dtype=np.float32)  # four "classes", one axis each
    query = np.array([[0.8, 0.6, 0.0, 0.0]], dtype=np.float32)
    alone = quality.QueryBridge(top_m=1, temperature=0.05, weight=float("inf"))
    assert np.allclose(alone.apply(bank, query), [[1, 0, 0, 0]])  # its nearest class alone
    even = quality.QueryBridge(top_m=2, temperature=1e6, weight=float("inf"))
    assert np.allclose(even.apply(bank, query), [[2**-0.5, 2**-0.5, 0, 0]], atol=1e-4)
    blended = quality.QueryBridge(top_m=1, temperature=0.05, weight=1.0).apply(bank, query)
    expected = np.array([1.8, 0.6, 0, 0]) / np.linalg.norm([1.8, 0.6])
    assert np.allclose(blended, [expected], atol=1e-6)
    assert np.isclose(np.linalg.norm(blended), 1.0)


def test_the_word_check_adds_to_the_cutoff_and_counts_against_its_fit(quality) -> None:
    def ranked(caption: str, score: float) -> object:
        return quality.Ranked("p", caption, 1, "p", score, score, "tuning")

    captions = [ranked(f"caption {i}", 0.1 * i) for i in range(1, 21)]
    nobody = {"caption 20"}  # a caption "no word of which is known", at the best score
    unknown = nobody.__contains__
    assert quality.fit_cutoff([r.own_score for r in captions]) == pytest.approx(0.2 - 1e-6)
    # 5 % of 20 captions may be hidden: the flagged one uses that allowance up.
    assert quality.fit_cutoff_with_words(captions, unknown) == pytest.approx(0.1 - 1e-6)
    assert quality.fit_cutoff_with_words(captions, lambda _: True) == float("-inf")
    best = {h: [1.0] * len(quality.nonsense()[h]) for h in quality.HALVES}
    result = quality.LevelResult("default", "off", captions, {}, best, 1.0, 0.15)
    assert result.cutoff_figures(0.15, "tuning")[:2] == (0.0, 0.05)
    flags = {quality.nonsense()["tuning"][0], *nobody}
    refused, hidden, _ = result.cutoff_figures(0.15, "tuning", flags.__contains__)
    assert (refused, hidden) == (pytest.approx(1 / 15), pytest.approx(0.10))
