// -- one photo: its details, previous/next, keyboard and swipe ---------------------------

function formatBytes(bytes) {
  if (bytes >= 1e6) return (bytes / 1e6).toFixed(1) + " MB";
  return Math.max(1, Math.round(bytes / 1e3)) + " kB";
}

// What the API answers at url, or null once failed(error) has said why it could not.
async function load(url, failed) {
  try {
    return await api(url);
  } catch (error) {
    failed(error);
    return null;
  }
}

function folderOf(path) {
  const cut = path.lastIndexOf("/");
  return cut > 0 ? path.slice(0, cut) : "/";
}

// When, where and with what the photo was taken, where its file said so.
function takenRows(item) {
  const rows = [];
  if (item.taken) {
    const source = item.taken_source === "file" ? "file time" : item.taken_source;
    rows.push(["Taken", `${new Date(item.taken).toLocaleString()} (${source})`]);
  }
  const place = item.place || {};
  const names = [place.city, place.region, place.country].filter(Boolean);
  if (names.length) rows.push(["Place", names.join(", ")]);
  if (item.camera) rows.push(["Camera", item.camera]);
  if (item.lens) rows.push(["Lens", item.lens]);
  return rows;
}

function detailRows(item) {
  const rows = [
    ...takenRows(item),
    ["Size", `${item.width} × ${item.height} px, ${formatBytes(item.size)}`],
    ["Folder", folderOf(item.path)],
    ["Path", item.path],
    ["Modified", new Date(item.mtime * 1000).toLocaleString()],
    ["Id", String(item.id)],
    ...Object.entries(item.metadata).map(([key, value]) =>
      [key, typeof value === "string" ? value : JSON.stringify(value)]),
  ];
  // Why did it match: what the concept bank saw, and the words read in the photo.
  const seen = Object.entries(item.concepts || {})
    .sort((a, b) => b[1] - a[1])
    .map(([name, confidence]) => `${name} ${confidence.toFixed(2)}`);
  if (seen.length) rows.push(["Seen", seen.join(", ")]);
  if (item.text) rows.push(["Words", item.text]);
  return rows;
}

// The photos before and after this one in the grid it was opened from.
function neighbours(id) {
  const at = state.list.indexOf(Number(id));
  if (at < 0) return [null, null];
  return [state.list[at - 1] ?? null, state.list[at + 1] ?? null];
}

function stepLink(id, label, rel) {
  const link = element("a", { className: "button quiet step", id: rel, href: id ? `#item=${id}` : "#" },
    [label]);
  if (!id) link.setAttribute("aria-disabled", "true");
  return link;
}

async function showItem(id) {
  const detail = $("#detail");
  show("detail");
  setStatus("");
  const item = await load(`/api/items/${encodeURIComponent(id)}`,
    (error) => setStatus(error.message, true));
  if (item === null) return;
  const list = element("dl", {}, detailRows(item).flatMap(([key, value]) =>
    [element("dt", {}, [key]), element("dd", {}, [value])]));
  const [previous, next] = neighbours(item.id);
  const inFolder = "#" + new URLSearchParams({ folder: folderOf(item.path) });
  const actions = element("div", { className: "actions" }, [
    element("a", { id: "more-like", className: "button", href: `#like=${item.id}` }, ["More like this"]),
    element("a", { id: "open-original", className: "button quiet", href: item.image, target: "_blank",
      rel: "noopener" }, ["Open original"]),
    element("a", { id: "show-folder", className: "button quiet", href: inFolder }, ["Show in folder"]),
    element("a", { id: "back", className: "button quiet", href: state.lastSearch || "#" }, ["Back"]),
  ]);
  detail.replaceChildren(
    element("div", { className: "picture" }, [
      element("img", { src: item.thumbnail + "?size=1280", alt: item.name }),
      stepLinks(previous, next),
    ]),
    element("div", {}, [element("h2", {}, [item.name]), list, actions]),
  );
  if (!next) nextPageFor(item.id);
}

function stepLinks(previous, next) {
  return element("div", { className: "steps" }, [
    stepLink(previous, "‹ Previous", "previous"), stepLink(next, "Next ›", "next"),
  ]);
}

// The last loaded photo of a grid that has more: load its next page, then offer Next.
async function nextPageFor(id) {
  const feed = state.feed;
  if (!feed || feed.finished) return;
  await loadMore();
  const [previous, next] = neighbours(id);
  const steps = document.querySelector("#detail .steps");
  if (next && steps && shownItem() === String(id)) steps.replaceWith(stepLinks(previous, next));
}

function shownItem() {
  return new URLSearchParams(location.hash.slice(1)).get("item");
}

function step(offset) {
  // The address, not the photo shown: a second key press may come before it is.
  const [previous, next] = neighbours(shownItem());
  const target = offset < 0 ? previous : next;
  if (target) location.replace(`#item=${target}`); // the way back stays the grid
}

// Arrow keys move through the grid: left and right in reading order, up and down to the
// nearest photo of the row above or below (rows differ in length under month headings).
function moveInGrid(key) {
  const cards = [...document.querySelectorAll("#results .card")];
  if (!cards.length) return false;
  const at = cards.indexOf(document.activeElement);
  let target = cards[0];
  if (at >= 0 && (key === "ArrowLeft" || key === "ArrowRight")) {
    target = cards[Math.min(cards.length - 1, Math.max(0, at + (key === "ArrowLeft" ? -1 : 1)))];
  } else if (at >= 0) {
    target = rowNeighbour(cards, cards[at], key === "ArrowUp" ? -1 : 1) || cards[at];
  }
  target.focus();
  target.scrollIntoView({ block: "nearest" });
  if (cards.indexOf(target) >= cards.length - 8) loadMore();
  return true;
}

function rowNeighbour(cards, from, direction) {
  const top = from.offsetTop;
  const rows = cards.filter((c) => direction * (c.offsetTop - top) > 0);
  if (!rows.length) return null;
  const row = direction > 0 ? Math.min(...rows.map((c) => c.offsetTop))
    : Math.max(...rows.map((c) => c.offsetTop));
  const inRow = rows.filter((c) => c.offsetTop === row);
  const distance = (c) => Math.abs(c.offsetLeft - from.offsetLeft);
  return inRow.reduce((best, c) => (distance(c) < distance(best) ? c : best));
}

function typing(event) {
  const target = event.target;
  return target instanceof HTMLInputElement || target instanceof HTMLSelectElement
    || target instanceof HTMLTextAreaElement;
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const inDetail = !$("#detail").hidden;
  if (event.key === "Escape") {
    if (inDetail) location.hash = state.lastSearch || "#";
    else if (document.activeElement === $("#q")) $("#q").blur();
    return;
  }
  if (typing(event)) return;
  if (event.key === "/") {
    event.preventDefault();
    $("#q").focus();
    $("#q").select();
  } else if (inDetail && (event.key === "ArrowLeft" || event.key === "ArrowRight")) {
    event.preventDefault();
    step(event.key === "ArrowLeft" ? -1 : 1);
  } else if (!$("#results").hidden && event.key.startsWith("Arrow")) {
    if (moveInGrid(event.key)) event.preventDefault();
  }
}

// A horizontal swipe on the photo goes to the previous or next one.
function setUpSwipe() {
  let start = null;
  const detail = $("#detail");
  detail.addEventListener("touchstart", (event) => {
    const touch = event.changedTouches[0];
    start = { x: touch.clientX, y: touch.clientY };
  }, { passive: true });
  detail.addEventListener("touchend", (event) => {
    if (!start) return;
    const touch = event.changedTouches[0];
    const dx = touch.clientX - start.x;
    const dy = touch.clientY - start.y;
    start = null;
    if (Math.abs(dx) > 50 && Math.abs(dx) > 2 * Math.abs(dy)) step(dx > 0 ? -1 : 1);
  });
}
