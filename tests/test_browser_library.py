"""The page as a photo library, in a real headless Chromium against a real server over
loopback: a library as people have them (two folders, JPEGs with EXIF dates and GPS
places, a HEIC, a photo known by its file time, a near-duplicate pair), indexed with the
built-in default model. One server and one browser for the module.

``PICSEARCH_SCREENSHOT=1`` saves each view into docs/images/ (else into a temp folder).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_browser
from library_photos import write_library
from PIL import Image
from test_browser import CHROMIUM, sync_api, wait_until

import picsearch

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]
#: Newest first by capture time (the scan is known by its file time, 2022).
TIMELINE = [
    "IMG_0412.heic",
    "IMG_0398.jpg",
    "IMG_0391.jpg",
    "porto-bridge.jpg",
    "lisbon-tram.jpg",
    "lisbon-cat.jpg",
    "lisbon-cat-small.jpg",
    "scan.jpg",
]
NAMES = "cards => cards.map(c => c.dataset.name)"
THUMBNAILS_LOADED = "[...document.querySelectorAll('#results img')].every(i => i.naturalWidth)"


#: The server and browser of test_browser, for this module's own library.
server = test_browser.server
browser = test_browser.browser


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PICSEARCH_CACHE", str(model_cache))
        folder = tmp_path_factory.mktemp("library")
        write_library(folder / "photos")
        with picsearch.open(folder / "photos.db", model="default") as lib:
            assert lib.index(folder / "photos", concepts="fast").added == len(TIMELINE)
        yield folder / "photos.db"


def open_page(browser, address: str, **context_options) -> tuple[object, list[str]]:
    options = {"viewport": {"width": 1100, "height": 760}, **context_options}
    context = browser.new_context(**options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(address)
    return page, errors


@pytest.fixture
def page(browser, server: str) -> Iterator[object]:
    page, errors = open_page(browser, server)
    yield page
    page.context.close()
    assert errors == [], errors


def screenshot(page, name: str, tmp_path: Path) -> None:
    """The view as docs/images/NAME.png when asked (PICSEARCH_SCREENSHOT=1)."""
    folder = IMAGES if os.environ.get("PICSEARCH_SCREENSHOT") else tmp_path
    target = folder / f"{name}.png"
    page.screenshot(path=str(target))
    shot = Image.open(target).convert("RGB")
    shot.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


def names(page) -> list[str]:
    return page.locator("#results .card").evaluate_all(NAMES)


def cards(page):
    return page.locator("#results .card")


def test_home_is_the_timeline_with_months_and_a_jump_list(page, tmp_path: Path) -> None:
    sync_api.expect(cards(page)).to_have_count(len(TIMELINE))
    assert names(page) == TIMELINE
    headings = page.locator("#results h3.month").all_inner_texts()
    assert headings == ["May 2024", "April 2024", "August 2023", "January 2022"]
    wait_until(page, THUMBNAILS_LOADED)  # the HEIC's thumbnail too
    assert page.locator("#results img").first.get_attribute("loading") == "lazy"
    sync_api.expect(page.locator("#nav-timeline")).to_have_class("current")
    screenshot(page, "timeline", tmp_path)
    page.locator("#jump").select_option("2023-08")
    sync_api.expect(page.locator("#results h3.month").first).to_have_text("August 2023")
    assert names(page) == TIMELINE[3:]
    assert page.evaluate("location.hash") == "#month=2023-08"


def test_the_timeline_loads_as_you_scroll(browser, server: str) -> None:
    pages: list[str] = []
    context = browser.new_context(viewport={"width": 390, "height": 300})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda r: pages.append(r.url) if "/api/timeline?" in r.url else None)
    page.goto(server + "?page=2")
    sync_api.expect(cards(page).first).to_be_visible()
    page.wait_for_timeout(500)
    assert 2 <= cards(page).count() < len(TIMELINE)  # what fills the screen, and a little more
    for _ in range(10):
        page.mouse.wheel(0, 3000)
        page.wait_for_timeout(150)
        if cards(page).count() == len(TIMELINE):
            break
    sync_api.expect(cards(page)).to_have_count(len(TIMELINE))
    assert names(page) == TIMELINE
    assert any("cursor=" in url for url in pages)  # the next pages by keyset
    assert not any("offset" in url for url in pages)
    page.context.close()
    assert errors == []


def test_browse_by_folder(page, tmp_path: Path) -> None:
    page.locator("#nav-folders").click()
    root = page.locator("#browse li a")
    sync_api.expect(root).to_have_count(1)
    assert root.inner_text().endswith("/photos")
    sync_api.expect(page.locator("#browse li .count")).to_have_text("8")
    root.click()
    sync_api.expect(page.locator("#browse li")).to_have_count(2)
    assert page.locator("#browse li").all_inner_texts() == ["phone 3", "trip 5"]
    sync_api.expect(cards(page)).to_have_count(8)
    page.locator("#browse li a", has_text="trip").click()
    sync_api.expect(cards(page)).to_have_count(5)
    assert names(page) == TIMELINE[3:]
    wait_until(page, THUMBNAILS_LOADED)
    screenshot(page, "folders", tmp_path)


def test_browse_by_place(page, tmp_path: Path) -> None:
    page.locator("#nav-places").click()
    sync_api.expect(page.locator("#browse li")).to_have_count(2)
    assert page.locator("#browse li").all_inner_texts() == ["Portugal 4", "France 2"]
    page.locator("#browse li a", has_text="Portugal").click()
    sync_api.expect(page.locator("#browse h2")).to_have_text("Portugal")
    sync_api.expect(cards(page)).to_have_count(4)
    cities = page.locator("#browse li").all_inner_texts()
    assert "Porto 1" in cities and sum(int(c.rsplit(" ", 1)[1]) for c in cities) == 4
    page.locator("#browse li a", has_text="Porto").click()
    sync_api.expect(cards(page)).to_have_count(1)
    sync_api.expect(cards(page).first).to_have_attribute("data-name", "porto-bridge.jpg")
    page.locator("#nav-places").click()
    page.locator("#browse li a", has_text="Portugal").click()
    sync_api.expect(cards(page)).to_have_count(4)
    sync_api.expect(page.locator("#status")).to_contain_text("photos in Portugal")
    wait_until(page, THUMBNAILS_LOADED)
    screenshot(page, "places", tmp_path)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("camera", "canon", TIMELINE[3:7]),
        ("place", "Paris", TIMELINE[:2]),
        ("people", "true", ["IMG_0391.jpg"]),
        ("after", "2024-01-01", TIMELINE[:3]),
    ],
)
def test_every_filter_works_with_no_query(page, field: str, value: str, expected) -> None:
    sync_api.expect(cards(page)).to_have_count(len(TIMELINE))
    page.locator("#filters summary").click()
    target = page.locator(f"#{field}")
    if field == "people":
        target.select_option(value)
    else:
        target.fill(value)
        target.dispatch_event("change")
    sync_api.expect(cards(page)).to_have_count(len(expected))
    assert sorted(names(page)) == sorted(expected)
    page.locator("#clear-filters").click()
    sync_api.expect(cards(page)).to_have_count(len(TIMELINE))


def test_search_results_load_as_you_scroll(browser, server: str) -> None:
    page, errors = open_page(browser, server + "?page=3#q=a%20cat")
    sync_api.expect(cards(page).first).to_have_attribute("data-name", re.compile("^lisbon-cat"))
    for _ in range(10):
        page.mouse.wheel(0, 3000)
        page.wait_for_timeout(150)
    sync_api.expect(cards(page)).to_have_count(len(TIMELINE))
    assert sorted(names(page)) == sorted(TIMELINE)  # every photo, each once
    hits = page.request.get(server + "api/search?q=a%20cat&k=8").json()["hits"]
    weak = [hit["name"] for hit in hits if hit.get("weak")]
    shown_weak = page.locator("#results .card.weak").evaluate_all(NAMES)
    assert shown_weak == weak  # set apart where the server says so
    page.context.close()
    assert errors == []


def test_the_detail_view_steps_through_the_grid(page, tmp_path: Path) -> None:
    sync_api.expect(cards(page)).to_have_count(len(TIMELINE))
    cards(page).nth(1).click()
    detail = page.locator("#detail")
    sync_api.expect(detail.locator("h2")).to_have_text("IMG_0398.jpg")
    facts = detail.locator("dl")
    for words in ("Taken", "5/2/2024", "France", "Apple iPhone 13", "px", "kB", "/photos/phone"):
        sync_api.expect(facts).to_contain_text(words)
    sync_api.expect(facts).to_contain_text("Seen")
    assert detail.locator("#open-original").get_attribute("href").endswith("/image")
    wait_until(page, "document.querySelector('#detail img').naturalWidth > 0")
    screenshot(page, "detail", tmp_path)
    page.locator("#next").click()
    sync_api.expect(detail.locator("h2")).to_have_text("IMG_0391.jpg")
    page.keyboard.press("ArrowRight")
    sync_api.expect(detail.locator("h2")).to_have_text("porto-bridge.jpg")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    sync_api.expect(detail.locator("h2")).to_have_text("IMG_0398.jpg")
    page.locator("#previous").click()
    sync_api.expect(detail.locator("h2")).to_have_text("IMG_0412.heic")
    sync_api.expect(page.locator("#previous")).to_have_attribute("aria-disabled", "true")
    page.keyboard.press("Escape")
    sync_api.expect(cards(page)).to_have_count(len(TIMELINE))
    sync_api.expect(detail).to_be_hidden()
    cards(page).nth(4).click()
    page.locator("#show-folder").click()
    sync_api.expect(page.locator("#browse h2")).to_contain_text("/photos/trip")
    sync_api.expect(cards(page)).to_have_count(5)
    cards(page).first.click()
    page.locator("#more-like").click()
    sync_api.expect(page.locator("#status")).to_contain_text("like photo")


def test_the_keyboard_drives_the_page(page) -> None:
    sync_api.expect(cards(page)).to_have_count(len(TIMELINE))
    page.locator("body").click(position={"x": 5, "y": 700})
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.id") != "q"
    page.keyboard.press("ArrowRight")
    focused = "document.activeElement.dataset.name"
    assert page.evaluate(focused) == TIMELINE[0]
    page.keyboard.press("ArrowRight")
    assert page.evaluate(focused) == TIMELINE[1]
    page.keyboard.press("ArrowLeft")
    assert page.evaluate(focused) == TIMELINE[0]
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")  # the row below, under its month heading: April
    assert page.evaluate(focused) == TIMELINE[2]
    page.keyboard.press("ArrowDown")  # August 2023
    assert page.evaluate(focused) == TIMELINE[3]
    page.keyboard.press("ArrowUp")
    assert page.evaluate(focused) == TIMELINE[2]
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#detail h2")).to_be_visible()
    page.keyboard.press("Escape")
    sync_api.expect(page.locator("#detail")).to_be_hidden()


def test_on_a_phone(browser, server: str, tmp_path: Path) -> None:
    page, errors = open_page(
        browser, server, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    sync_api.expect(cards(page)).to_have_count(len(TIMELINE))
    sync_api.expect(page.locator("#drop")).to_be_hidden()
    sync_api.expect(page.locator("#photo-button")).to_be_visible()
    sync_api.expect(page.locator("#photo-button")).to_have_text("Search by photo")
    header = page.evaluate("document.querySelector('header').getBoundingClientRect().bottom")
    assert header <= 844 / 5, header  # header and filters: at most a fifth of the screen
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    columns = page.evaluate(
        "getComputedStyle(document.querySelector('#results')).gridTemplateColumns.split(' ').length"
    )
    assert columns >= 3
    wait_until(page, THUMBNAILS_LOADED)
    screenshot(page, "phone", tmp_path)
    cards(page).first.click()
    sync_api.expect(page.locator("#detail h2")).to_have_text(TIMELINE[0])
    swipe(page, -200)  # right to left: the next photo
    sync_api.expect(page.locator("#detail h2")).to_have_text(TIMELINE[1])
    swipe(page, 200)
    sync_api.expect(page.locator("#detail h2")).to_have_text(TIMELINE[0])
    page.goto(server + "#dups")
    sync_api.expect(page.locator(".group")).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.context.close()
    assert errors == []


def swipe(page, dx: int) -> None:
    """A one-finger swipe across the photo (touch events, as a phone sends them)."""
    page.evaluate(
        """dx => {
          const target = document.querySelector('#detail img');
          const touch = (x) => new Touch({identifier: 1, target, clientX: x, clientY: 300});
          const send = (type, x) => target.dispatchEvent(new TouchEvent(type, {
            bubbles: true, changedTouches: [touch(x)],
            touches: type === 'touchend' ? [] : [touch(x)],
          }));
          send('touchstart', 200);
          send('touchend', 200 + dx);
        }""",
        dx,
    )


def test_duplicates_choose_a_keeper_move_and_undo(page, library: Path, tmp_path: Path) -> None:
    photos = library.parent / "photos"
    small = photos / "trip" / "lisbon-cat-small.jpg"
    page.locator("#dups-link").click()
    group = page.locator(".group")
    sync_api.expect(group).to_have_count(1)
    keeper = group.locator(".member.is-keeper")
    sync_api.expect(keeper).to_have_count(1)
    sync_api.expect(keeper.locator(".card")).to_have_attribute("data-name", "lisbon-cat.jpg")
    sync_api.expect(keeper.locator(".badge")).to_have_text("Keeper")
    other = group.locator(".member:not(.is-keeper)")
    facts = other.locator(".facts").inner_text()
    assert "225 × 150" in facts and "kB" in facts and "similarity 0.9" in facts
    assert "2023" in facts or "8/9" in facts
    styles = "el => getComputedStyle(el).borderColor"
    assert keeper.evaluate(styles) != other.evaluate(styles)  # the keeper stands out
    wait_until(page, "[...document.querySelectorAll('#dups img')].every(i => i.naturalWidth)")
    screenshot(page, "duplicates", tmp_path)
    other.locator(".make-keeper").click()  # another keeper
    sync_api.expect(group.locator(".member.is-keeper .card")).to_have_attribute(
        "data-name", "lisbon-cat-small.jpg"
    )
    other = group.locator(".member:not(.is-keeper)")
    other.locator(".make-keeper").click()  # and back
    target = tmp_path / "set-aside"
    group.locator("button.move").click()
    group.locator("input.folder").fill(str(target))
    group.locator(".move-form button[type=submit]").click()
    sync_api.expect(group.locator(".plan li")).to_have_count(1)
    assert small.exists() and not target.exists()  # the confirm step moves nothing
    group.locator(".confirm-move").click()
    sync_api.expect(group.locator(".done")).to_contain_text("Moved 1 file")
    moved = list(target.rglob("*.jpg"))
    assert [p.name for p in moved] == ["lisbon-cat-small.jpg"] and not small.exists()
    group.locator("button.undo").click()
    sync_api.expect(group.locator(".done")).to_contain_text("Moved 1 file back")
    assert small.exists() and not list(target.rglob("*.jpg"))
    shutil.rmtree(target)


def test_next_from_the_last_loaded_photo_loads_the_next_page(browser, server: str) -> None:
    # One photo a page and a short window: the grid holds fewer photos than the library.
    page, errors = open_page(
        browser, server.rstrip("/") + "/?page=1", viewport={"width": 390, "height": 300}
    )
    sync_api.expect(cards(page).first).to_be_visible()
    page.wait_for_timeout(300)  # let the grid fill the short window
    loaded = cards(page).count()
    assert loaded < len(TIMELINE)
    cards(page).nth(loaded - 1).click()
    detail = page.locator("#detail")
    sync_api.expect(detail.locator("h2")).to_have_text(TIMELINE[loaded - 1])
    sync_api.expect(page.locator("#next")).not_to_have_attribute("aria-disabled", "true")
    page.locator("#next").click()
    sync_api.expect(detail.locator("h2")).to_have_text(TIMELINE[loaded])
    page.context.close()
    assert errors == [], errors
