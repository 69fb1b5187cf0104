// picsearch web page: plain JavaScript, no build step, talks only to this server.
// The server serves app.js, browse.js, detail.js, dups.js and start.js as one script.
// Views follow the location hash: (none) the timeline, #month=YYYY-MM, #folders,
// #folder=PATH, #places, #country=C[&city=X], #q=TEXT, #like=ID, #item=ID, #dups.
"use strict";

const DEBOUNCE_MS = 250;
// Photos asked for at a time as the grid scrolls (?page=N sets it, to try paging by hand).
const PAGE = Math.min(200, Number(new URLSearchParams(location.search).get("page")) || 60);
const FIRST_SCREEN = 24; // thumbnails that fill a large first screen
const $ = (selector) => document.querySelector(selector);
const state = {
  timer: 0, seq: 0, controller: null, upload: null, lastSearch: "", feed: null, list: [],
  views: 0, // counts the views asked for: an answer for an older one is dropped
};

class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(url, options = {}) {
  const response = await fetch(url, { credentials: "same-origin", ...options });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.status === 401) showLogin();
  if (!response.ok) {
    const message = (body && body.error && body.error.message) || response.statusText;
    throw new ApiFailure(response.status, message);
  }
  return body;
}

function postJson(url, body) {
  return api(url, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
}

function element(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function setStatus(text, isError = false) {
  const status = $("#status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

// Show one view: "results" (a grid, with "browse" lists above it when asked), "detail" or "dups".
function show(view, withBrowse = false) {
  for (const id of ["results", "detail", "dups"]) $("#" + id).hidden = id !== view;
  $("#browse").hidden = !(view === "results" && withBrowse);
  $("#more").hidden = view !== "results";
  $("#query-image").hidden = view !== "results" || !state.upload;
}

function markNav(name) {
  for (const id of ["timeline", "folders", "places"]) {
    $("#nav-" + id).classList.toggle("current", id === name);
  }
  $("#dups-link").classList.toggle("current", name === "dups");
  $("#jump").hidden = name !== "timeline";
}

// -- the grid, loaded a page at a time -------------------------------------------------

// A feed: fetchPage(cursor) answers {items, next}; the grid asks for the next page as its
// end comes into view. months: month headings between the photos (a timeline).
function startFeed(fetchPage, { months = false, done = () => {} } = {}) {
  state.views += 1;
  state.feed = { fetchPage, months, done, next: null, finished: false, loading: false,
    lastMonth: null, weakShown: false, count: 0, fresh: true };
  return loadMore();
}

// The next page of the grid; a page already on its way is waited for, not asked twice.
async function loadMore() {
  const feed = state.feed;
  if (!feed || feed.finished) return;
  if (feed.loading) return feed.loading;
  feed.loading = loadPage(feed);
  try {
    await feed.loading;
  } finally {
    feed.loading = false;
  }
  if (feed === state.feed && !feed.finished && nearTheEnd()) loadMore();
}

async function loadPage(feed) {
  try {
    const page = await feed.fetchPage(feed.next);
    if (feed !== state.feed) return;
    appendPhotos(feed, page.items);
    feed.next = page.next;
    feed.finished = page.next === null || page.next === undefined;
    feed.done(feed, page);
  } catch (error) {
    if (feed !== state.feed || error.name === "AbortError") return;
    feed.finished = true;
    if (!feed.count) $("#results").replaceChildren();
    setStatus(error.message, true);
  }
}

function nearTheEnd() {
  if ($("#more").hidden) return false;
  return $("#more").getBoundingClientRect().top < window.innerHeight * 1.5;
}

function monthName(taken) {
  const [year, month] = taken.slice(0, 7).split("-").map(Number);
  return new Date(year, month - 1, 1).toLocaleDateString(undefined, { year: "numeric", month: "long" });
}

function appendPhotos(feed, photos) {
  const results = $("#results");
  if (feed.fresh) { // the grid shown until now goes when the new one's first page is here
    feed.fresh = false;
    results.replaceChildren();
    state.list = [];
  }
  for (const photo of photos) {
    if (feed.months && photo.taken.slice(0, 7) !== feed.lastMonth) {
      feed.lastMonth = photo.taken.slice(0, 7);
      results.append(element("h3", { className: "month", dataset: { month: feed.lastMonth } },
        [monthName(photo.taken)]));
    }
    if (photo.weak && !feed.weakShown) {
      feed.weakShown = true;
      results.append(element("h3", { className: "weak-heading" }, ["Weak matches"]));
    }
    const node = card(photo, photo.score);
    // The first screen's thumbnails first: lazy loading asks for those of the next
    // screens too, and they would share the connections.
    node.querySelector("img").fetchPriority = state.list.length < FIRST_SCREEN
      ? "high" : "low";
    results.append(node);
    state.list.push(photo.id);
  }
  feed.count += photos.length;
}

function card(photo, score) {
  const image = element("img", {
    src: photo.thumbnail, alt: photo.name, loading: "lazy", decoding: "async", width: 320, height: 320,
  });
  const caption = element("span", { className: "caption" }, [
    element("span", { className: "name", title: photo.path }, [photo.name]),
  ]);
  if (score !== undefined) caption.append(element("span", { className: "score" }, [score.toFixed(3)]));
  const node = element("a", {
    className: "card", href: `#item=${photo.id}`, dataset: { id: String(photo.id), name: photo.name },
  }, [image, caption]);
  if (photo.weak) {
    node.classList.add("weak");
    node.title = "a weak match";
  }
  return node;
}

// -- searching ---------------------------------------------------------------------------

function filterParams() {
  const params = new URLSearchParams();
  for (const name of ["folder", "after", "before", "place", "camera", "people", "color"]) {
    const value = $("#" + name).value.trim();
    if (value) params.set(name, value);
  }
  for (const name of ["has_text", "bw", "text_only"]) {
    if ($("#" + name).checked) params.set(name, "true");
  }
  return params;
}

function hasFilters() {
  return [...filterParams().keys()].some((name) => name !== "text_only");
}

// Runs one search, a page at a time; a newer one aborts it, so only the latest is shown.
function search(url, options, describe) {
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  setStatus("Searching…");
  show("results");
  const paged = !options.method; // an upload is sent once: one page of the most results
  const fetchPage = async (start) => {
    const params = new URLSearchParams({ k: String(paged ? PAGE : 200), start: String(start || 0) });
    const found = await api(`${url}&${params}`, { ...options, signal: controller.signal });
    const hits = found.hits;
    const next = paged && hits.length === PAGE ? (start || 0) + PAGE : null;
    return { items: hits, next, took: found.took_ms, understood: found.understood };
  };
  return startFeed(fetchPage, {
    done: (feed, page) => {
      const count = feed.count;
      const more = feed.finished ? "" : "+";
      // What the words said of when and where ("taken 2019-06-01..2019-08-31; searching ...").
      const understood = page && page.understood ? ` · ${page.understood.summary}` : "";
      setStatus((count ? `${count}${more} photo${count === 1 ? "" : "s"} ${describe} · ${Math.round(page.took)} ms`
        : `No photos ${describe}`) + understood);
    },
  });
}

function searchText(text) {
  state.upload = null;
  markNav("search");
  const params = filterParams();
  params.set("q", text);
  state.lastSearch = "#" + new URLSearchParams({ q: text });
  return search("/api/search?" + params, {}, `for “${text}”`);
}

function searchFilters() {
  state.upload = null;
  markNav("search");
  state.lastSearch = "#";
  return search("/api/search?" + filterParams(), {}, "with these filters");
}

function searchLike(id) {
  state.upload = null;
  markNav("search");
  state.lastSearch = "#like=" + id;
  return search(`/api/items/${id}/similar?` + filterParams(), {}, `like photo ${id}`);
}

function searchUpload(file) {
  if (!file) return;
  state.upload = file;
  markNav("search");
  $("#q").value = "";
  if (location.hash) history.pushState(null, "", location.pathname + location.search);
  state.lastSearch = "";
  const preview = $("#query-image");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  const form = new FormData();
  form.append("file", file, file.name || "photo");
  search("/api/search/image?" + filterParams(), { method: "POST", body: form },
    `like ${file.name || "your photo"}`);
}

function onType() {
  clearTimeout(state.timer);
  state.timer = setTimeout(() => {
    const text = $("#q").value.trim();
    if (!text) return;
    // replaceState: typing does not fill the history; it fires no hashchange either.
    history.replaceState(null, "", "#" + new URLSearchParams({ q: text }));
    searchText(text);
  }, DEBOUNCE_MS);
}

// -- access token ---------------------------------------------------------------------------

function showLogin() {
  $("#login").hidden = false;
  $("#token").focus();
}

async function login(token) {
  try {
    await postJson("/api/session", { token });
  } catch (error) {
    setStatus(error.message, true);
    return false;
  }
  $("#login").hidden = true;
  setStatus("");
  loadInfo();
  return true;
}

async function loadInfo() {
  try {
    const info = await api("/api/info");
    $("#info").textContent = `${info.items} photos · model ${info.model || "none yet"} · picsearch ${info.version}`;
    $("#dups-link").hidden = !info.duplicates;
  } catch (error) {
    if (error.status !== 401) $("#info").textContent = error.message;
  }
}
