"""Attack picsearch the way the outside world does, and count what goes wrong.

Each case runs the real ``picsearch`` command (or a real ``picsearch serve`` on
127.0.0.1) over a library or a folder made hostile on purpose, and is classed:

- ``error``: refused with a one-line message (or a 4xx JSON answer): what we want;
- ``ok``: it worked (a skip reported on stderr is fine);
- ``traceback``: a Python traceback reached the user, or the server answered 5xx;
- ``hang``: no answer within the case's time limit;
- items ``lost``: photos the library held before the case and not after.

Run: ``python benchmarks/hostile.py [--families ingest,cli,server,searcher]
[--schemathesis-minutes 5] [--megapixels 196]``. Targets: 0 tracebacks, 0 hangs,
0 items lost; server peak RSS <= 1 GB under 8 concurrent thumbnail requests of a
196-megapixel image; an image search answers within 1 s while 8 uploads stall.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

PICSEARCH = [sys.executable, "-m", "picsearch.cli"]
# Running as root ignores file permissions: drop the capabilities that bypass them.
DROP_CAPS = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]


@dataclass
class Outcome:
    family: str
    case: str
    kind: str  # ok, error, traceback, hang
    lost: int = 0
    peak_rss_mb: float = 0.0
    note: str = ""


@dataclass
class Run:
    code: int | None
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mb: float


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        flag = "" if outcome.kind in ("ok", "error") and not outcome.lost else "  <-- FAIL"
        print(
            f"  {outcome.family:<9} {outcome.case:<44} {outcome.kind:<9} lost {outcome.lost}"
            f"  {outcome.peak_rss_mb:7.0f} MB  {outcome.note}{flag}",
            file=sys.stderr,
        )

    def table(self) -> str:
        lines = [
            "| family | cases | one-line errors | ok | tracebacks / 5xx | hangs | items lost "
            "| peak RSS (MB) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        families = dict.fromkeys(o.family for o in self.outcomes)
        for family in families:
            mine = [o for o in self.outcomes if o.family == family]
            kinds = Counter(o.kind for o in mine)
            lines.append(
                f"| {family} | {len(mine)} | {kinds['error']} | {kinds['ok']} | "
                f"{kinds['traceback']} | {kinds['hang']} | {sum(o.lost for o in mine)} | "
                f"{max(o.peak_rss_mb for o in mine):.0f} |"
            )
        return "\n".join(lines)


def run_cli(
    args: list[str], *, timeout: float = 120, drop_caps: bool = False, cwd: Path | None = None
) -> Run:
    """Run ``picsearch ARGS``; its own peak RSS comes from wait4, its time from the clock."""
    command = [*DROP_CAPS, *PICSEARCH, *args] if drop_caps else [*PICSEARCH, *args]
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    out: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda n=n, s=s: out.__setitem__(n, s.read()))
        for n, s in (("stdout", process.stdout), ("stderr", process.stderr))
    ]
    for reader in readers:
        reader.start()
    code: int | None = None
    rss = 0.0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            code, rss = os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024
            process.returncode = code
            break
        if time.perf_counter() - started > timeout:
            process.kill()
            os.wait4(process.pid, 0)
            process.returncode = -9
            break
        time.sleep(0.02)
    for reader in readers:
        reader.join()
    return Run(
        code,
        out.get("stdout", b"").decode(errors="replace"),
        out.get("stderr", b"").decode(errors="replace"),
        time.perf_counter() - started,
        rss,
    )


def classify(run: Run) -> str:
    if run.code is None:
        return "hang"
    if "Traceback (most recent call last)" in run.stderr:
        return "traceback"
    if run.code == 0:
        return "ok"
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    return "error" if len(errors) == 1 else "traceback"


def severity(run: Run) -> int:
    return ["ok", "error", "traceback", "hang"].index(classify(run))


def catalog_ids(db: Path) -> set[int]:
    if not db.exists():
        return set()
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        return {row[0] for row in con.execute("SELECT id FROM items")}


# -- material ----------------------------------------------------------------------


def photo(path: Path, seed: int, size: tuple[int, int] = (160, 120)) -> Path:
    """A small photo-like picture: a gradient with a few shapes, distinct per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    base = rng.integers(0, 256, 3)
    pixels = (base + 0.5 * x[..., None] * rng.uniform(-1, 1, 3)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0 = rng.integers(0, size[0] - 20), rng.integers(0, size[1] - 20)
        draw.ellipse(
            (x0, y0, x0 + 30, y0 + 25), fill=tuple(int(v) for v in rng.integers(0, 256, 3))
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def transparent(path: Path, shape: str) -> Path:
    """Black line art on a transparent background: the content is only in the alpha."""
    image = Image.new("RGBA", (160, 120), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if shape == "circle":
        draw.ellipse((30, 20, 130, 100), outline=(0, 0, 0, 255), width=8)
    else:
        draw.line((10, 10, 150, 110), fill=(0, 0, 0, 255), width=10)
    image.save(path)
    return path


def library_folder(root: Path, count: int = 12) -> Path:
    for i in range(count):
        photo(root / ("sub" if i % 3 == 0 else "") / f"p{i:02d}.jpg", seed=i)
    return root


def index(folder: Path, db: Path, *extra: str, **kwargs: object) -> Run:
    return run_cli(
        [
            "index",
            str(folder),
            "--db",
            str(db),
            "--model",
            "tiny",
            "--concepts",
            "off",
            "-q",
            *extra,
        ],
        **kwargs,
    )  # type: ignore[arg-type]


# -- ingest ------------------------------------------------------------------------


def ingest_family(report: Report, work: Path) -> None:
    cases = {
        "unreadable subfolder": _unreadable_subfolder,
        "unreadable root": _unreadable_root,
        "root removed": _root_removed,
        "empty path": lambda d, f, db: index_args(d, ["index", "", "--db", str(db)]),
        "fifo inside a folder": _fifo_inside,
        "fifo as root": _fifo_root,
        "non-UTF-8 and newline names": _odd_names,
        "transparent images stay distinct": _transparent,
        "huge dimensions in a PNG header": _huge_dimensions,
        "2 GB non-image named .jpg": _huge_file,
        "truncated and empty images": _truncated,
    }
    for name, make in cases.items():
        case_dir = work / f"ingest-{len(report.outcomes)}"
        folder = library_folder(case_dir / "photos")
        db = case_dir / "lib.db"
        index(folder, db)
        before = catalog_ids(db)
        run, note = make(case_dir, folder, db)
        after = catalog_ids(db)
        _restore_permissions(case_dir)
        report.add(
            Outcome("ingest", name, classify(run), len(before - after), run.peak_rss_mb, note)
        )


def index_args(_: Path, args: list[str]) -> tuple[Run, str]:
    return run_cli(args), ""


def _unreadable_subfolder(case: Path, folder: Path, db: Path) -> tuple[Run, str]:
    (folder / "sub").chmod(0)
    run = index(folder, db, drop_caps=True)
    return run, "skip reported" if "sub" in run.stderr else "no skip reported"


def _unreadable_root(case: Path, folder: Path, db: Path) -> tuple[Run, str]:
    folder.chmod(0)
    return index(folder, db, drop_caps=True), ""


def _root_removed(case: Path, folder: Path, db: Path) -> tuple[Run, str]:
    folder.rename(case / "elsewhere")
    run = index(folder, db)
    (case / "elsewhere").rename(folder)
    return run, ""


def _fifo_inside(case: Path, folder: Path, db: Path) -> tuple[Run, str]:
    os.mkfifo(folder / "pipe.jpg")
    run = index(folder, db, timeout=60)
    return run, "skip reported" if "pipe.jpg" in run.stderr else "no skip reported"


def _fifo_root(case: Path, folder: Path, db: Path) -> tuple[Run, str]:
    os.mkfifo(case / "root.jpg")
    search = run_cli(["search", "--image", str(case / "root.jpg"), "--db", str(db)], timeout=30)
    run = index(case / "root.jpg", db, timeout=60)
    worst = max((search, run), key=severity)
    return worst, f"search --image FIFO: {classify(search)}"


def _odd_names(case: Path, folder: Path, db: Path) -> tuple[Run, str]:
    photo(Path(os.fsdecode(os.fsencode(str(folder)) + b"/caf\xe9.jpg")), seed=101)
    photo(folder / "two\nlines.jpg", seed=102)
    run = index(folder, db)
    if classify(run) != "ok":
        return run, ""
    search = run_cli(
        ["search", "--image", str(folder / "two\nlines.jpg"), "--db", str(db), "-k", "20"]
    )
    lines = search.stdout.splitlines()
    return search, f"{len(catalog_ids(db))} items, {len(lines)} result lines for 14"


def _transparent(case: Path, folder: Path, db: Path) -> tuple[Run, str]:
    # The default model: its vectors are what decided duplicates for real libraries.
    folder, db = case / "transparent", case / "transparent.db"
    folder.mkdir()
    transparent(folder / "circle.png", "circle")
    transparent(folder / "line.png", "line")
    photo(folder / "photo.jpg", seed=5)
    run = run_cli(["index", str(folder), "--db", str(db), "--concepts", "off", "-q"], timeout=600)
    with contextlib.closing(sqlite3.connect(db)) as con:
        vectors = [
            np.frombuffer(blob, np.float32)
            for (blob,) in con.execute(
                "SELECT joint FROM items WHERE path LIKE '%circle.png' OR path LIKE '%line.png'"
            )
        ]
    similarity = float(vectors[0] @ vectors[1]) if len(vectors) == 2 else float("nan")
    dups = run_cli(["dups", str(folder), "--db", str(db), "--json"])
    grouped = "circle.png" in dups.stdout and "line.png" in dups.stdout
    kind_run = run if not grouped else Run(1, "", "Traceback (most recent call last)", 0, 0)
    return (
        kind_run,
        f"cosine {similarity:.3f}; {'GROUPED as duplicates' if grouped else 'not grouped'}",
    )


def _huge_dimensions(case: Path, folder: Path, db: Path) -> tuple[Run, str]:
    # A real 1x1 PNG whose header claims 100,000 x 100,000: the pixel limit must refuse it.
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = (100_000).to_bytes(4, "big") * 2
    (folder / "huge.png").write_bytes(bytes(data))
    run = index(folder, db, timeout=60)
    return run, "skip reported" if "huge.png" in run.stderr else "no skip reported"


def _huge_file(case: Path, folder: Path, db: Path) -> tuple[Run, str]:
    with open(folder / "big.jpg", "wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: costs no disk
    run = index(folder, db, timeout=120)
    return run, f"{run.seconds:.1f} s"


def _truncated(case: Path, folder: Path, db: Path) -> tuple[Run, str]:
    data = (folder / "p01.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 3])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.webp").write_bytes(b"not an image at all\n" * 10)
    return index(folder, db), ""


def _restore_permissions(root: Path) -> None:
    for folder, dirs, _ in os.walk(root):
        for name in dirs:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(folder, name), 0o755)
    with contextlib.suppress(OSError):
        root.chmod(0o755)


# -- command line and damaged libraries -------------------------------------------


def cli_family(report: Report, work: Path) -> None:
    folder = library_folder(work / "cli-photos", count=40)
    clean = work / "cli-clean.db"
    index(folder, clean)
    probe = str(folder / "p01.jpg")
    calls = {
        "search --before 9999-12-31T23:59:59": ["search", "x", "--before", "9999-12-31T23:59:59"],
        "search --after nan": ["search", "x", "--after", "nan"],
        "search --like 99999999999999999999": ["search", "--like", "99999999999999999999"],
        "similar 99999999999999999999": ["similar", "99999999999999999999"],
        "search -k 1000000000": ["search", "--image", probe, "-k", "1000000000"],
        "search -k 0": ["search", "x", "-k", "0"],
        "search --bogus (subcommand usage)": ["search", "x", "--bogus"],
        "index missing root leaves no file": ["index", str(work / "nope")],
        "serve --port 70000": ["serve", "--port", "70000"],
    }
    for name, args in calls.items():
        db = work / f"cli-{len(report.outcomes)}.db"
        if "leaves no file" not in name:
            shutil.copy(clean, db)
        run = run_cli([*args, "--db", str(db)], timeout=60)
        kind = classify(run)
        if run.code == 2 and kind == "traceback" and "usage:" in run.stderr:
            kind = "error"  # argparse: usage line + one error line
        note = ""
        if "leaves no file" in name and db.exists():
            kind, note = "traceback", "left an empty library file"
        if "--bogus" in name and "usage: picsearch search" not in run.stderr:
            note = "top-level usage printed"
        report.add(Outcome("cli", name, kind, 0, run.peak_rss_mb, note))
    report.add(_broken_pipe(clean))
    for name, damage in DAMAGES.items():
        db = work / f"damaged-{len(report.outcomes)}.db"
        shutil.copy(clean, db)
        before = catalog_ids(db)
        damage(db)
        runs = [
            run_cli([command, *rest, "--db", str(db)], timeout=60)
            for command, *rest in (
                ["info"],
                ["search", "a photo"],
                ["index", str(folder), "--model", "tiny", "-q"],
            )
        ]
        worst = max(runs, key=severity)
        check = run_cli(["check", "--db", str(db), "--repair"], timeout=120)
        after = _safe_ids(db)
        lost = len(before - after) if after is not None else len(before)
        report.add(
            Outcome(
                "damaged",
                name,
                classify(worst),
                lost if name in LOSSLESS else 0,
                worst.peak_rss_mb,
                f"check --repair: {classify(check)}",
            )
        )
    report.add(_read_only_folder(work, clean))


def _broken_pipe(db: Path) -> Outcome:
    query = db.parent / "cli-photos" / "p01.jpg"
    shell = f"{' '.join(PICSEARCH)} search --image {query} -k 40 --db {db} | head -1"
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60)
    kind = "traceback" if "Traceback" in done.stderr or "BrokenPipe" in done.stderr else "ok"
    return Outcome("cli", "search | head -1", kind)


def _safe_ids(db: Path) -> set[int] | None:
    try:
        return catalog_ids(db)
    except sqlite3.DatabaseError:
        return None


def _sql(statement: str):
    def damage(db: Path) -> None:
        with contextlib.closing(sqlite3.connect(db)) as con:
            con.execute(statement)
            con.commit()

    return damage


def _zero_page(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = con.execute("PRAGMA page_size").fetchone()[0]
        pages = con.execute("PRAGMA page_count").fetchone()[0]
    with open(db, "r+b") as handle:
        handle.seek(page * (pages // 2))
        handle.write(bytes(page))


def _damage_fts(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as con:
        tables = [
            name
            for (name,) in con.execute(
                "SELECT name FROM sqlite_master WHERE name LIKE '%_data' AND type = 'table'"
            )
        ]
        for table in tables:
            con.execute(f"UPDATE {table} SET block = zeroblob(length(block)) WHERE id > 1")
        con.commit()


DAMAGES = {
    "zeroed page in the middle": _zero_page,
    "damaged full-text pages": _damage_fts,
    "bad dims JSON": _sql("UPDATE meta SET value = '{not json' WHERE key = 'dims'"),
    "short vector blob": _sql("UPDATE items SET joint = x'0000' WHERE id = 3"),
    "empty vector blob": _sql("UPDATE items SET joint = x'' WHERE id = 4"),
    "non-numeric generation": _sql("INSERT OR REPLACE INTO meta VALUES ('generation', 'abc')"),
    "non-numeric schema version": _sql(
        "UPDATE meta SET value = 'two' WHERE key = 'schema_version'"
    ),
}
# Damages that leave every row readable: repairing them must lose no photo.
LOSSLESS = {"damaged full-text pages", "bad dims JSON", "non-numeric schema version"}


def _read_only_folder(work: Path, clean: Path) -> Outcome:
    folder = work / "read-only"
    folder.mkdir()
    db = folder / "lib.db"
    shutil.copy(clean, db)
    folder.chmod(0o555)
    db.chmod(0o444)
    runs = [
        run_cli(["info", "--db", str(db)], drop_caps=True),
        run_cli(["search", "a photo", "--db", str(db)], drop_caps=True),
    ]
    folder.chmod(0o755)
    kinds = [classify(run) for run in runs]
    worst = max(kinds, key=["ok", "error", "traceback", "hang"].index)
    return Outcome(
        "cli",
        "info and search in a read-only folder",
        worst,
        note=f"info {kinds[0]}, search {kinds[1]} (want ok)",
    )


# -- the server --------------------------------------------------------------------


class Server:
    """``picsearch serve`` on a free loopback port; peak RSS read from /proc."""

    def __init__(self, db: Path, *extra: str) -> None:
        self.process = subprocess.Popen(
            [*PICSEARCH, "serve", "--db", str(db), "--port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = self.process.stdout.readline().strip()  # type: ignore[union-attr]
        if not self.url.startswith("http"):
            raise RuntimeError(f"server did not start: {self.process.stderr.read()}")  # type: ignore[union-attr]

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> str:
        self.process.terminate()
        try:
            _, stderr = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return stderr


HOSTILE_URLS = [
    "/api/items/9223372036854775808",
    "/api/items/99999999999999999999999/thumbnail",
    "/api/items/18446744073709551616/image",
    "/api/items/9223372036854775808/similar",
    "/api/items/-1",
    "/api/search?q=x&after=nan",
    "/api/search?q=x&before=inf",
    "/api/search?q=x&after=1e20",
    "/api/search?q=x&before=9999-12-31T23:59:59",
    "/api/search?q=" + "x" * 100_000,
    "/api/search?q=%00%ff",
    "/api/search?q=x&k=1000000000",
    "/api/search?q=a%20photo&k=50",
]


def server_family(report: Report, work: Path, megapixels: int) -> None:
    import httpx

    folder = library_folder(work / "server-photos", count=12)
    photo(Path(os.fsdecode(os.fsencode(str(folder)) + b"/caf\xe9.jpg")), seed=77)
    db = work / "server.db"
    index(folder, db)
    server = Server(db)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for url in HOSTILE_URLS:
                report.add(_http_case(client, "GET", url[:60]))
            hosts = ["[::1]evil.com", "127.0.0.1.evil.com", "localhost:80@evil.com", "evil.com"]
            for host in hosts:
                answer = client.get("/api/health", headers={"host": host})
                kind = "error" if answer.status_code in (400, 403, 421) else "traceback"
                report.add(Outcome("server", f"Host: {host}", kind, note=str(answer.status_code)))
        report.add(_stalled_uploads(server, folder / "p01.jpg"))
    finally:
        server.stop()
    report.add(_big_thumbnails(work, megapixels))


def _http_case(client, method: str, url: str) -> Outcome:
    import httpx

    try:
        answer = client.request(method, url)
    except httpx.TimeoutException:
        return Outcome("server", url, "hang")
    except httpx.TransportError as exc:
        return Outcome("server", url, "traceback", note=f"connection: {exc}")
    if answer.status_code >= 500:
        return Outcome("server", url, "traceback", note=str(answer.status_code))
    is_json = answer.headers.get("content-type", "").startswith("application/json")
    kind = "ok" if answer.status_code < 400 else "error" if is_json else "traceback"
    return Outcome("server", url, kind, note=str(answer.status_code))


def _stalled_uploads(server: Server, query: Path) -> Outcome:
    """8 uploads that send a part of their body and stall; then one real image search."""
    import httpx

    host, port = server.url.split("//")[1].rstrip("/").split(":")
    sockets = []
    for _ in range(8):
        sock = socket.create_connection((host, int(port)))
        head = (
            "POST /api/search/image HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: 5000000\r\n\r\n"
            '--XX\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
        )
        sock.sendall(head.encode() + b"\xff\xd8" + bytes(1000))
        sockets.append(sock)
    time.sleep(0.5)
    started = time.perf_counter()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            answer = client.post(
                "/api/search/image",
                files={"file": ("q.jpg", query.read_bytes(), "image/jpeg")},
                data={"k": "5"},
            )
        seconds = time.perf_counter() - started
        kind = "ok" if answer.status_code == 200 and seconds < 1 else "hang"
        note = f"image search answered {answer.status_code} in {seconds:.2f} s"
    except httpx.TimeoutException:
        kind, note = "hang", "image search did not answer in 10 s"
    for sock in sockets:
        sock.close()
    return Outcome("server", "image search while 8 uploads stall", kind, note=note)


_BIG_PNG = """
import sys
import numpy as np
from PIL import Image
side = int(sys.argv[2])
gradient = np.linspace(0, 255, side, dtype=np.float32).astype(np.uint8)
Image.fromarray(np.broadcast_to(gradient, (side, side))).convert("RGB").save(
    sys.argv[1], compress_level=1
)
"""


def _big_thumbnails(work: Path, megapixels: int) -> Outcome:
    import httpx

    folder = work / "big"
    folder.mkdir()
    side = int((megapixels * 1e6) ** 0.5)
    print(f"  writing a {side}x{side} PNG ({megapixels} MP)...", file=sys.stderr)
    # In a child process: a benchmark that grew to gigabytes would pass that size on to
    # every command it forks after (Linux keeps ru_maxrss across exec).
    subprocess.run(
        [sys.executable, "-c", _BIG_PNG, str(folder / "huge.png"), str(side)], check=True
    )
    db = work / "big.db"
    index(folder, db, timeout=600)
    server = Server(db)
    try:
        idle = server.peak_rss_mb()
        codes: list[int] = []

        def fetch(size: int) -> None:
            with httpx.Client(base_url=server.url, timeout=300) as client:
                codes.append(client.get(f"/api/items/1/thumbnail?size={size}").status_code)

        sizes = (160, 320, 640, 1280) * 2  # the sizes the server makes, each twice
        threads = [threading.Thread(target=fetch, args=(size,)) for size in sizes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        peak = server.peak_rss_mb()
    finally:
        server.stop()
    kind = "ok" if all(code == 200 for code in codes) else "traceback"
    return Outcome(
        "server",
        f"8 thumbnails of a {megapixels} MP PNG at once",
        kind,
        peak_rss_mb=peak,
        note=f"codes {sorted(set(codes))}; idle {idle:.0f} MB",
    )


# -- exported searchers ------------------------------------------------------------

MANIFEST_ATTACKS = {
    "resize 10**6 x 10**6": ("resize", [10**6, 10**6]),
    "resize 0 x 0": ("resize", [0, 0]),
    "resize -5 x 16": ("resize", [-5, 16]),
    "resize as text": ("resize", "big"),
    "scale of text": ("scale", ["a", "b", "c"]),
    "shift of 1e308": ("shift", [1e308, 1e308, 1e308]),
    "unknown resample": ("resample", "sideways"),
    "dims 10**9": ("dims", 10**9),
    "items -1": ("items", -1),
    "format version 999": ("format_version", 999),
}


def searcher_family(report: Report, work: Path) -> None:
    folder = library_folder(work / "searcher-photos", count=8)
    db = work / "searcher.db"
    index(folder, db)
    exported = work / "lib.searcher"
    run_cli(["export", "--db", str(db), "-o", str(exported)])
    with zipfile.ZipFile(exported) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    for name, (key, value) in MANIFEST_ATTACKS.items():
        crafted = work / f"crafted-{len(report.outcomes)}.searcher"
        _rewrite_manifest(exported, crafted, _set_deep(manifest, key, value))
        run = run_cli(["search", "a photo", "--searcher", str(crafted)], timeout=60)
        report.add(Outcome("searcher", name, classify(run), 0, run.peak_rss_mb))
    for flag in (["--bw"], ["--people"], ["--color", "red"], ["--text-only"]):
        run = run_cli(["search", "a photo", "--searcher", str(exported), *flag, "--json"])
        report.add(Outcome("searcher", f"search --searcher {' '.join(flag)}", classify(run)))


def _set_deep(manifest: dict, key: str, value: object) -> dict:
    """A copy of the manifest with every field named ``key`` (at any depth) set to value."""

    def walk(node: object) -> object:
        if isinstance(node, dict):
            return {k: (value if k == key else walk(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(manifest)  # type: ignore[return-value]


def _rewrite_manifest(source: Path, target: Path, manifest: dict) -> None:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for entry in old.infolist():
            data = old.read(entry)
            if entry.filename == "manifest.json":
                data = json.dumps(manifest).encode()
            new.writestr(entry, data)


# -- schemathesis ------------------------------------------------------------------


def schemathesis_family(report: Report, work: Path, minutes: float) -> None:
    """schemathesis with all its default phases, run after run with new seeds, until the
    time is up; any failure in any run counts."""
    folder = library_folder(work / "fuzz-photos", count=8)
    photo(Path(os.fsdecode(os.fsencode(str(folder)) + b"/caf\xe9.jpg")), seed=78)
    db = work / "fuzz.db"
    index(folder, db)
    server = Server(db)
    deadline = time.monotonic() + minutes * 60
    runs, failed, seed = 0, [], 1
    try:
        while time.monotonic() < deadline:
            command = [
                sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}openapi.json",
                "--checks=not_a_server_error,response_schema_conformance",
                "--max-examples=100", f"--seed={seed}", "--workers=1",
                "--generation-database=none", "--no-color",
            ]  # fmt: skip
            left = max(deadline - time.monotonic(), 30)
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=left + 120)
            except subprocess.TimeoutExpired:
                failed.append(f"seed {seed}: no answer")
                break
            runs, seed = runs + 1, seed + 1
            if done.returncode != 0:
                failed.append(f"seed {seed - 1}: {done.stdout.strip().splitlines()[-1:]}")
    finally:
        log = server.stop()
    if "Traceback" in log:
        failed.append("traceback in the server log")
    kind = "traceback" if failed else "ok"
    note = f"{runs} runs of 100 examples per operation; " + ("; ".join(failed) or "nothing found")
    report.add(Outcome("fuzz", f"schemathesis {minutes:g} min", kind, note=note[:160]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="ingest,cli,server,searcher")
    parser.add_argument("--megapixels", type=int, default=196)
    parser.add_argument("--schemathesis-minutes", type=float, default=0)
    args = parser.parse_args()
    report = Report()
    families = args.families.split(",")
    with tempfile.TemporaryDirectory(prefix="picsearch-hostile-") as tmp:
        work = Path(tmp)
        # The real model cache: the transparency case exports the default model only once.
        os.environ.setdefault("PICSEARCH_CACHE", str(Path.home() / ".cache" / "picsearch"))
        os.environ["HOME"] = str(work)
        if "ingest" in families:
            ingest_family(report, work)
        if "cli" in families:
            cli_family(report, work)
        if "server" in families:
            server_family(report, work, args.megapixels)
        if "searcher" in families:
            searcher_family(report, work)
        if args.schemathesis_minutes:
            schemathesis_family(report, work, args.schemathesis_minutes)
        _restore_permissions(work)
    print(report.table())


if __name__ == "__main__":
    main()
