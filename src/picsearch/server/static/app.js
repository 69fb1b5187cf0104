// picsearch web page: plain JavaScript, no build step, talks only to this server.
// Views follow the location hash: #q=TEXT, #like=ID, #item=ID, #dups (and #token=T once).
"use strict";

const DEBOUNCE_MS = 250;
const $ = (selector) => document.querySelector(selector);
const state = { timer: 0, seq: 0, controller: null, upload: null, lastSearch: "" };

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

function show(view) {
  for (const id of ["results", "detail", "dups"]) $("#" + id).hidden = id !== view;
  $("#query-image").hidden = view !== "results" || !state.upload;
}

// -- searching --------------------------------------------------------------------

function filterParams() {
  const params = new URLSearchParams();
  const k = parseInt($("#k").value, 10);
  if (k > 0) params.set("k", String(Math.min(k, 200)));
  for (const name of ["folder", "after", "before", "place", "camera", "people", "color"]) {
    const value = $("#" + name).value.trim();
    if (value) params.set(name, value);
  }
  for (const name of ["has_text", "bw", "text_only"]) {
    if ($("#" + name).checked) params.set(name, "true");
  }
  return params;
}

// Runs one search; a newer one aborts it, so only the latest results are shown.
async function search(url, options, describe) {
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  const seq = ++state.seq;
  setStatus("Searching…");
  show("results");
  try {
    const found = await api(url, { ...options, signal: controller.signal });
    if (seq !== state.seq) return;
    renderHits($("#results"), found.hits);
    const count = found.hits.length;
    setStatus(count ? `${count} photo${count === 1 ? "" : "s"} ${describe} · ${Math.round(found.took_ms)} ms`
      : `No photos ${describe}`);
  } catch (error) {
    if (error.name === "AbortError" || seq !== state.seq) return;
    $("#results").replaceChildren();
    setStatus(error.message, true);
  }
}

function searchText(text) {
  state.upload = null;
  const params = filterParams();
  params.set("q", text);
  state.lastSearch = "#" + new URLSearchParams({ q: text });
  search("/api/search?" + params, {}, `for “${text}”`);
}

function searchLike(id) {
  state.upload = null;
  state.lastSearch = "#like=" + id;
  search(`/api/items/${id}/similar?` + filterParams(), {}, `like photo ${id}`);
}

function searchUpload(file) {
  if (!file) return;
  state.upload = file;
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

function renderHits(container, hits) {
  container.replaceChildren(...hits.map((hit) => card(hit, hit.score)));
}

function card(photo, score) {
  const image = element("img", {
    src: photo.thumbnail, alt: photo.name, loading: "lazy", decoding: "async", width: 320, height: 320,
  });
  const caption = element("span", { className: "caption" }, [
    element("span", { className: "name", title: photo.path }, [photo.name]),
  ]);
  if (score !== undefined) caption.append(element("span", { className: "score" }, [score.toFixed(3)]));
  return element("a", {
    className: "card", href: `#item=${photo.id}`, dataset: { id: String(photo.id), name: photo.name },
  }, [image, caption]);
}

// -- one photo --------------------------------------------------------------------

function formatBytes(bytes) {
  if (bytes >= 1e6) return (bytes / 1e6).toFixed(1) + " MB";
  return Math.max(1, Math.round(bytes / 1e3)) + " kB";
}

// Show one panel, emptied, with a status line while its data loads.
function openPanel(name, status) {
  const panel = $(`#${name}`);
  show(name);
  panel.replaceChildren();
  setStatus(status);
  return panel;
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

// When, where and with what the photo was taken, where its file said so.
function takenRows(item) {
  const rows = [];
  if (item.taken && item.taken_source !== "file") {
    rows.push(["Taken", `${new Date(item.taken).toLocaleString()} (${item.taken_source})`]);
  }
  const place = item.place || {};
  const names = [place.city, place.region, place.country].filter(Boolean);
  if (names.length) rows.push(["Place", names.join(", ")]);
  if (item.camera) rows.push(["Camera", item.camera]);
  if (item.lens) rows.push(["Lens", item.lens]);
  return rows;
}

async function showItem(id) {
  const detail = openPanel("detail", "");
  const item = await load(`/api/items/${encodeURIComponent(id)}`,
    (error) => setStatus(error.message, true));
  if (item === null) return;
  const rows = [
    ["Path", item.path],
    ["Size", `${item.width} × ${item.height} px, ${formatBytes(item.size)}`],
    ["Modified", new Date(item.mtime * 1000).toLocaleString()],
    ...takenRows(item),
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
  const list = element("dl", {}, rows.flatMap(([key, value]) =>
    [element("dt", {}, [key]), element("dd", {}, [value])]));
  const back = element("a", { className: "button quiet", href: state.lastSearch || "#" }, ["Back"]);
  const actions = element("div", { className: "actions" }, [
    element("a", { id: "more-like", className: "button", href: `#like=${item.id}` }, ["More like this"]),
    element("a", { className: "button quiet", href: item.image, target: "_blank", rel: "noopener" },
      ["Open original"]),
    back,
  ]);
  detail.append(
    element("img", { src: item.thumbnail + "?size=1280", alt: item.name }),
    element("div", {}, [element("h2", {}, [item.name]), list, actions]),
  );
}

// -- near-duplicates ---------------------------------------------------------------

async function showDups() {
  const dups = openPanel("dups", "Looking for near-duplicates…");
  const found = await load("/api/duplicates", (error) => {
    const unavailable = error.status === 404;
    setStatus(unavailable ? "Near-duplicate detection is not available in this installation."
      : error.message, !unavailable);
  });
  if (found === null) return;
  const groups = found.groups;
  setStatus(groups.length ? `${groups.length} group${groups.length === 1 ? "" : "s"} of near-duplicates`
    : "No near-duplicates found");
  for (const group of groups) {
    const best = Math.max(...group.pairs.map((pair) => pair.score));
    const cards = group.members.map((member) => {
      const node = card(member);
      if (member.id === group.keeper) node.classList.add("keeper");
      node.title = member.id === group.keeper ? "the one to keep" : "";
      return node;
    });
    dups.append(element("section", { className: "group" }, [
      element("h3", {}, [`${group.members.length} photos · similarity up to ${best.toFixed(3)}`]),
      element("div", { className: "grid" }, cards),
    ]));
  }
}

// -- access token -------------------------------------------------------------------

function showLogin() {
  $("#login").hidden = false;
  $("#token").focus();
}

async function login(token) {
  try {
    await api("/api/session", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token }),
    });
  } catch (error) {
    setStatus(error.message, true);
    return false;
  }
  $("#login").hidden = true;
  setStatus("");
  loadInfo();
  return true;
}

// -- the page ------------------------------------------------------------------------

async function loadInfo() {
  try {
    const info = await api("/api/info");
    $("#info").textContent = `${info.items} photos · model ${info.model || "none yet"} · picsearch ${info.version}`;
    $("#dups-link").hidden = !info.duplicates;
  } catch (error) {
    if (error.status !== 401) $("#info").textContent = error.message;
  }
}

async function route() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.has("token")) {
    const token = params.get("token");
    history.replaceState(null, "", location.pathname); // the token leaves the address bar
    await login(token);
    return route();
  }
  if (params.has("item")) return showItem(params.get("item"));
  if (params.has("like")) return searchLike(params.get("like"));
  if (params.has("q")) {
    $("#q").value = params.get("q");
    return searchText(params.get("q"));
  }
  if (location.hash === "#dups") return showDups();
  if (state.upload) return searchUpload(state.upload);
  show("results");
  $("#results").replaceChildren();
  setStatus("Type what you are looking for, or drop a photo.");
}

function setUpDrop() {
  const drop = $("#drop");
  const file = $("#file");
  drop.addEventListener("click", () => file.click());
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") file.click();
  });
  file.addEventListener("change", () => searchUpload(file.files[0]));
  // The whole page accepts a dropped photo; the zone shows where.
  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  document.addEventListener("dragleave", () => drop.classList.remove("over"));
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const dropped = [...event.dataTransfer.files].find((f) => f.type.startsWith("image/"));
    if (dropped) searchUpload(dropped);
    else setStatus("Drop an image file.", true);
  });
}

function start() {
  $("#q").addEventListener("input", onType);
  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(state.timer);
    const text = $("#q").value.trim();
    if (text) {
      history.replaceState(null, "", "#" + new URLSearchParams({ q: text }));
      searchText(text);
    }
  });
  $("#filters").addEventListener("change", () => route());
  $("#login").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await login($("#token").value)) route();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("#detail").hidden) history.back();
  });
  setUpDrop();
  window.addEventListener("hashchange", route);
  if (!location.hash.includes("token=")) loadInfo();
  route();
}

start();
