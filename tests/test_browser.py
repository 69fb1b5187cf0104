"""The web page in a real headless Chromium (Playwright), against a real uvicorn server
over the sample photos indexed with the built-in default model.

``PICSEARCH_SCREENSHOT=1`` saves the page to docs/images/web.png (else to a temp folder).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

import picsearch
from picsearch.samples import write_sample_photos

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "web.png"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]
pytest.importorskip("skimage")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")


@contextmanager
def serving(app) -> Iterator[str]:
    """A real uvicorn server for ``app`` in a thread, on a free loopback port."""
    import uvicorn

    from picsearch.cli.serve import address_of, bind_socket

    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        yield address_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Path]:
    """The sample photos indexed with the default model."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PICSEARCH_CACHE", str(model_cache))
        folder = tmp_path_factory.mktemp("samples")
        write_sample_photos(folder / "photos")
        with picsearch.open(folder / "photos.db", model="default") as lib:
            assert lib.index(folder / "photos").added == 21
        yield folder / "photos.db"


@pytest.fixture(scope="module")
def server(library: Path) -> Iterator[str]:
    from picsearch.server import create_app

    with serving(create_app(library, thumbnail_dir=library.parent / "thumbs")) as address:
        yield address


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server: str) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server)
    yield page
    context.close()
    assert errors == [], errors


def wait_until(page, script: str, timeout_ms: int = 15_000) -> None:
    """Poll a script until it is true (wait_for_function would need eval, which the page's
    Content-Security-Policy forbids)."""
    for _ in range(timeout_ms // 50):
        if page.evaluate(script):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"still false after {timeout_ms} ms: {script}")


def first_card(page):
    return page.locator("#results .card").first


def test_typing_a_query_shows_the_expected_photo_first(page, tmp_path: Path) -> None:
    searches: list[str] = []
    page.on("request", lambda r: searches.append(r.url) if "/api/search?" in r.url else None)
    start = dt.datetime(2024, 5, 1, 12, 0)
    page.clock.install(time=start)  # the page's timers run on a fake clock...
    page.reload()
    page.clock.pause_at(start + dt.timedelta(minutes=1))  # ...that only this test moves
    for key in "a cat":
        page.locator("#q").press(key if key != " " else "Space")
        page.clock.run_for(100)  # a typist's pause, shorter than the debounce
    assert searches == []
    page.clock.run_for(300)
    sync_api.expect(first_card(page)).to_have_attribute("data-name", "chelsea.jpg")
    assert len(searches) == 1, searches  # typing is debounced: one request, not one per key
    page.clock.resume()
    assert page.evaluate("location.hash") == "#q=a+cat"
    wait_until(page, "[...document.querySelectorAll('#results img')].every(i => i.naturalWidth)")
    assert page.locator("#results .card").count() == 21
    assert float(first_card(page).locator(".score").inner_text()) > 0.5
    page.locator("#q").fill("a cup of coffee")
    sync_api.expect(first_card(page)).to_have_attribute("data-name", "coffee.jpg")
    page.locator("#q").fill("a cat")
    sync_api.expect(first_card(page)).to_have_attribute("data-name", "chelsea.jpg")
    wait_until(page, "[...document.querySelectorAll('#results img')].every(i => i.complete)")
    target = SCREENSHOT if os.environ.get("PICSEARCH_SCREENSHOT") else tmp_path / "web.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target))
    shot = Image.open(target)
    shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
        target, optimize=True
    )
    assert shot.size == (1100, 760)


def test_the_status_says_when_the_words_said(page) -> None:
    page.locator("#q").fill("a cat in 1999")
    status = page.locator("#status")
    sync_api.expect(status).to_contain_text("No photos for “a cat in 1999”")
    sync_api.expect(status).to_contain_text('taken 1999-01-01..1999-12-31; searching "a cat"')


def test_search_by_uploading_an_image(page, tmp_path: Path, server: str) -> None:
    query = tmp_path / "query.jpg"
    original = page.request.get(server + "api/search?q=a%20cat&k=1").json()["hits"][0]
    assert original["name"] == "chelsea.jpg"
    Image.open(original["path"]).crop((40, 20, 330, 280)).resize((200, 180)).save(query, quality=60)
    page.locator("#file").set_input_files(str(query))
    sync_api.expect(first_card(page)).to_have_attribute("data-name", "chelsea.jpg")
    sync_api.expect(page.locator("#query-image")).to_be_visible()
    sync_api.expect(page.locator("#status")).to_contain_text("like query.jpg")


def test_open_a_photo_then_more_like_this(page) -> None:
    page.locator("#q").fill("a motorcycle")
    sync_api.expect(first_card(page)).to_have_attribute("data-name", "motorcycle.jpg")
    first_card(page).click()
    detail = page.locator("#detail")
    sync_api.expect(detail.locator("h2")).to_have_text("motorcycle.jpg")
    sync_api.expect(detail.locator("dl")).to_contain_text("px")
    sync_api.expect(detail.locator("dl")).to_contain_text("color:brown")  # why it matched
    page.locator("#more-like").click()
    sync_api.expect(page.locator("#status")).to_contain_text("like photo")
    sync_api.expect(page.locator("#results .card")).to_have_count(20)
    names = page.locator("#results .card").evaluate_all("cards => cards.map(c => c.dataset.name)")
    assert "motorcycle.jpg" not in names
    page.go_back()
    sync_api.expect(detail.locator("h2")).to_have_text("motorcycle.jpg")


def test_concept_filters_narrow_the_results(page) -> None:
    page.locator("#filters summary").click()
    page.locator("#people").select_option("true")
    page.locator("#q").fill("a photo")
    sync_api.expect(page.locator("#results .card")).to_have_count(3)
    names = page.locator("#results .card").evaluate_all("cards => cards.map(c => c.dataset.name)")
    assert sorted(names) == ["astronaut.jpg", "camera.jpg", "grace_hopper.jpg"]
    page.locator("#people").select_option("")
    page.locator("#color").select_option("red")
    sync_api.expect(page.locator("#results .card")).to_have_count(1)
    sync_api.expect(first_card(page)).to_have_attribute("data-name", "retina.jpg")


def test_phone_sized_screen_and_the_duplicates_page(browser, server: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(server + "#q=a%20flower")
    sync_api.expect(first_card(page)).to_have_attribute("data-name", "flower.jpg")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    columns = page.evaluate(
        "getComputedStyle(document.querySelector('#results')).gridTemplateColumns.split(' ').length"
    )
    assert columns >= 2
    assert page.request.get(server + "api/info").json()["duplicates"] is True
    page.goto(server + "#dups")
    sync_api.expect(page.locator("#status")).to_contain_text("near-duplicates")
    context.close()


def test_with_a_token_the_page_asks_for_it(browser, library: Path) -> None:
    from picsearch.server import create_app

    token = "a-long-enough-access-token"
    app = create_app(library, token=token, workers=1, thumbnail_dir=library.parent / "thumbs")
    with serving(app) as address:
        context = browser.new_context()
        page = context.new_page()
        page.goto(address)
        sync_api.expect(page.locator("#login")).to_be_visible()
        page.locator("#token").fill("not-the-token")
        page.locator("#login button").click()
        sync_api.expect(page.locator("#status")).to_contain_text("wrong access token")
        page.goto(address + "#token=" + token)  # the link form: the page signs in with it
        sync_api.expect(page.locator("#login")).to_be_hidden()
        assert "token" not in page.url
        page.locator("#q").fill("a cup of coffee")
        sync_api.expect(first_card(page)).to_have_attribute("data-name", "coffee.jpg")
        wait_until(page, "document.querySelector('#results img').naturalWidth > 0")
        context.close()


def test_the_duplicates_report_opens_with_its_thumbnails(browser, tmp_path: Path) -> None:
    from picsearch.dups import find_duplicates, write_html_report

    folder = tmp_path / "photos"
    write_sample_photos(folder)
    original = Image.open(folder / "coffee.jpg")
    original.resize((original.width // 2, original.height // 2)).save(folder / "coffee-small.jpg")
    original.save(folder / "coffee-q30.jpg", quality=30)
    with picsearch.open(tmp_path / "lib.db", model="tiny") as lib:
        lib.index(folder, concepts="off")
        groups = [g for g in find_duplicates(lib, threshold=0.97) if len(g.members) >= 3]
    report = write_html_report(groups, tmp_path / "report.html")
    context = browser.new_context()
    page = context.new_page()
    page.goto(report.resolve().as_uri())
    wait_until(page, "[...document.images].every(i => i.complete)")
    widths = page.evaluate("[...document.images].map(i => i.naturalWidth)")
    assert len(widths) == sum(len(g.members) for g in groups) >= 3 and min(widths) > 0
    assert page.locator("text=coffee-small.jpg").count() >= 1
    context.close()
