"""The HTTP server under load: text search over loopback vs the same search in-process.

    python benchmarks/server.py [--items 10000] [--requests 2000] [--concurrency 1 8 32]
                                [--configs 1:0 2:0 2:1 4:1]

It builds a library of ``--items`` photos (the 21 sample photos indexed with the
default model, then catalog rows written directly with their vectors plus
noise, so every row is a plausible photo), and measures:

- in-process: ``Library.search(text, k=24)`` called in a loop on one thread, in
  this process, right before each HTTP run (the machines are shared and noisy:
  each ratio compares two runs taken seconds apart);
- over HTTP: ``picsearch serve`` in its own process, driven by this process
  with ``--requests`` text searches per concurrency level (a fixed number, so the
  run stops by itself), for each server configuration ``WORKERS:THREADS``
  (search threads : ONNX Runtime intra-op threads, 0 = its default).

Every query goes through the default model's text encoder. It prints requests/s,
p50/p99 latency and their ratios to in-process, the load generator's own CPU
time per request (it shares the machine with the server), errors (any non-200
answer, a short result list, or a failed connection; each is logged), and the
server's resident memory at start and after each level. The server's log goes to
``benchmarks/data/server-N/server-W-T.log``. Tables go to stdout, progress to
stderr. Exit status 1 if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from index import DATA, sample_photos  # benchmarks/index.py, beside this script

import picsearch
from picsearch.catalog import Catalog
from picsearch.samples import SAMPLE_CAPTIONS

K = 24
WARM_UP = 30
QUERIES = [caption for captions in SAMPLE_CAPTIONS.values() for caption in captions]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the library ------------------------------------------------------------------------


def build_library(items: int) -> Path:
    """A library of ``items`` rows: the sample photos' vectors with noise (written once)."""
    folder = DATA / f"server-{items}"
    db = folder / "photos.db"
    if db.exists():
        return db
    folder.mkdir(parents=True, exist_ok=True)
    samples = folder / "samples.db"
    with picsearch.open(samples, model="default") as lib:
        lib.index(sample_photos())
        info = lib.info()
        rows = {hit.id: hit for hit in lib.search("a photo", k=100)}
        ids, joint = lib.vectors("joint")
        _, visual = lib.vectors("visual")
    log(f"writing {items} catalog rows into {db}")
    rng = np.random.default_rng(0)
    catalog = Catalog(db, create=True)
    dims = info.dims
    catalog.bind_model("default", info.model_id, dims["joint"], dims["visual"])
    with catalog.transaction():
        for i in range(items):
            source = i % len(ids)
            hit = rows[int(ids[source])]
            name = Path(hit.path).stem
            catalog.upsert(
                path_bytes=f"/photos/synthetic/{i // 1000:03}/{name}-{i:06}.jpg".encode(),
                size=int(hit.metadata["size"]),
                mtime_ns=1_600_000_000_000_000_000 + i * 60_000_000_000,
                digest=hashlib.sha256(str(i).encode()).hexdigest()[:32],
                width=int(hit.metadata["width"]),
                height=int(hit.metadata["height"]),
                joint=noisy(joint[source], rng, 0.35),
                visual=noisy(visual[source], rng, 0.35),
            )
    catalog.close()
    return db


def noisy(vector: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    noise = rng.normal(0, scale / np.sqrt(len(vector)), len(vector)).astype(np.float32)
    out = vector + noise
    return out / np.linalg.norm(out)


# -- in-process --------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    latencies_ms: np.ndarray
    seconds: float
    errors: int = 0
    cpu_seconds: float = 0.0  # this process's CPU time: the load generator's own cost

    @property
    def per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))


class InProcess:
    """The same text searches through ``Library.search`` on one thread, in this process."""

    def __init__(self, db: Path) -> None:
        self.lib = picsearch.open(db, create=False)
        for query in QUERIES[:WARM_UP]:
            self.lib.search(query, k=K)
        self.expected = {q: [h.id for h in self.lib.search(q, k=K)] for q in QUERIES[:5]}

    def run(self, count: int) -> Run:
        latencies = []
        start = time.perf_counter()
        for i in range(count):
            began = time.perf_counter()
            self.lib.search(QUERIES[i % len(QUERIES)], k=K)
            latencies.append((time.perf_counter() - began) * 1000)
        return Run("in-process", np.array(latencies), time.perf_counter() - start)


# -- over HTTP ------------------------------------------------------------------------------


def start_server(db: Path, workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PICSEARCH_TOKEN": ""}
    if threads:
        env["PICSEARCH_THREADS"] = str(threads)
    command = [sys.executable, "-m", "picsearch.cli", "serve", "--db", str(db), "--port", "0"]
    server = subprocess.Popen(
        [*command, "--workers", str(workers)],
        stdout=subprocess.PIPE,
        stderr=(db.parent / f"server-{workers}-{threads}.log").open("w"),
        text=True,
        env=env,
    )
    address = server.stdout.readline().strip()
    if not address.startswith("http://"):
        server.kill()
        raise SystemExit(f"the server did not start (printed {address!r})")
    return server, address


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(address: str, requests: int, concurrency: int) -> Run:
    """``requests`` text searches, ``concurrency`` at a time, each timed; then it stops."""
    import httpx

    latencies: list[float] = []
    errors = 0
    issued = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=address, limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal issued, errors
            while issued < requests:
                query = QUERIES[issued % len(QUERIES)]
                issued += 1
                began = time.perf_counter()
                try:
                    response = await client.get("/api/search", params={"q": query, "k": K})
                    ok = response.status_code == 200 and len(response.json()["hits"]) == K
                    problem = f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    ok, problem = False, f"{type(exc).__name__}: {exc}"
                latencies.append((time.perf_counter() - began) * 1000)
                if not ok:
                    errors += 1
                    log(f"  error: {query!r}: {problem}")

        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return Run(f"c{concurrency}", np.array(latencies), seconds, errors, cpu)


def same_results(address: str, expected: dict[str, list[int]]) -> bool:
    import httpx

    for query, ids in expected.items():
        hits = httpx.get(address + "api/search", params={"q": query, "k": K}).json()["hits"]
        if [h["id"] for h in hits] != ids:
            return False
    return True


@dataclass
class ServerResult:
    config: str
    runs: list[tuple[Run, Run]]  # (over HTTP, in-process just before it)
    memory_mb: list[tuple[str, float]]
    same: bool


def measure_server(
    db: Path, config: str, args: argparse.Namespace, local: InProcess
) -> ServerResult:
    """Each concurrency level right after an in-process run, so each ratio compares
    two measurements taken a few seconds apart on this shared machine."""
    workers, threads = (int(part) for part in config.split(":"))
    server, address = start_server(db, workers, threads)
    try:
        asyncio.run(load(address, WARM_UP, 2))
        memory = [("start", rss_mb(server.pid))]
        same = same_results(address, local.expected)
        runs = []
        for concurrency in args.concurrency:
            log(f"  {config}: {args.requests} requests at concurrency {concurrency}")
            base = local.run(args.baseline)
            runs.append((asyncio.run(load(address, args.requests, concurrency)), base))
            memory.append((f"after c{concurrency}", rss_mb(server.pid)))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return ServerResult(config, runs, memory, same)


# -- report --------------------------------------------------------------------------------


def report(results: list[ServerResult], items: int) -> int:
    print(f"\nText search, k={K}, {items:,}-photo library, default model, loopback HTTP\n")
    head = (
        f"{'server W:T':<10} {'conc.':>5} {'requests':>8} {'errors':>6} {'req/s':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'client CPU ms':>13} | {'in-proc/s':>9} {'p50 ms':>6} | "
        f"{'req/s ÷ in-proc':>15} {'p50 ÷ in-proc':>13}"
    )
    print(head)
    print("-" * len(head))
    errors = 0
    for result in results:
        for run, base in result.runs:
            errors += run.errors
            print(
                f"{result.config:<10} {run.label[1:]:>5} {len(run.latencies_ms):>8} "
                f"{run.errors:>6} {run.per_second:>7.1f} {run.pct(50):>7.2f} {run.pct(99):>7.2f} "
                f"{1000 * run.cpu_seconds / len(run.latencies_ms):>13.2f} "
                f"| {base.per_second:>9.1f} {base.pct(50):>6.2f} | "
                f"{run.per_second / base.per_second:>15.2f} {run.pct(50) / base.pct(50):>13.2f}"
            )
    print("\nServer resident memory (MB)\n")
    labels = [label for label, _ in results[0].memory_mb]
    print(f"{'server W:T':<10} " + " ".join(f"{label:>10}" for label in labels) + "  growth")
    for result in results:
        values = [value for _, value in result.memory_mb]
        growth = (values[-1] - values[1]) / values[1] if len(values) > 2 else 0.0
        cells = " ".join(f"{value:>10.0f}" for value in values)
        print(f"{result.config:<10} {cells}  {growth:+.1%} (first level → end)")
    same = all(result.same for result in results)
    print(f"\nHTTP results identical to in-process: {'yes' if same else 'NO'}; errors: {errors}")
    return 1 if errors or not same else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2000, help="per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["1:0", "2:0", "2:1", "4:1"],
        help="server WORKERS:THREADS to compare (THREADS 0: ONNX Runtime's default)",
    )
    parser.add_argument(
        "--baseline", type=int, default=300, help="in-process searches before each level"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    db = build_library(args.items)
    local = InProcess(db)
    results = [measure_server(db, config, args, local) for config in args.configs]
    status = report(results, args.items)
    if args.json:
        figures = {
            r.config: [
                {
                    "concurrency": int(run.label[1:]),
                    "per_s": run.per_second,
                    "p50_ms": run.pct(50),
                    "p99_ms": run.pct(99),
                    "errors": run.errors,
                    "client_cpu_ms_per_request": 1000 * run.cpu_seconds / len(run.latencies_ms),
                    "in_process_per_s": base.per_second,
                    "in_process_p50_ms": base.pct(50),
                }
                for run, base in r.runs
            ]
            for r in results
        }
        args.json.write_text(json.dumps(figures, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
