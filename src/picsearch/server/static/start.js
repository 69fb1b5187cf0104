// -- the page: routes and wiring -------------------------------------------------------------

// The grid a detail view was opened from stays as it was: going back shows it again
// where it was scrolled, without asking the server again.
function reshowGrid() {
  if (state.gridHash !== location.hash || !state.feed || !state.feed.count) return false;
  show("results", state.gridBrowse);
  window.scrollTo(0, state.gridScroll || 0);
  return true;
}

function leaveGrid() {
  if (!$("#results").hidden) {
    state.gridHash = state.shownHash;
    state.gridScroll = window.scrollY;
    state.gridBrowse = !$("#browse").hidden;
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
  if (params.has("item")) {
    leaveGrid();
    return showItem(params.get("item"));
  }
  if (reshowGrid()) return;
  state.shownHash = location.hash;
  if (params.has("like")) return searchLike(params.get("like"));
  if (params.has("q")) {
    $("#q").value = params.get("q");
    return searchText(params.get("q"));
  }
  if (location.hash === "#dups") return showDups();
  if (location.hash === "#folders") return showFolders(null);
  if (params.has("folder")) return showFolders(params.get("folder"));
  if (location.hash === "#places") return showPlaces(null, null);
  if (params.has("country")) return showPlaces(params.get("country"), params.get("city"));
  if (state.upload) return searchUpload(state.upload);
  if (hasFilters()) return searchFilters();
  $("#q").value = "";
  return showTimeline(params.get("month"));
}

function rerun() {
  state.gridHash = null;
  const text = $("#q").value.trim();
  const params = new URLSearchParams(location.hash.slice(1));
  if (text || params.has("like") || state.upload) return route();
  // Filters with no words: the photos they allow, newest first.
  if (location.hash && location.hash !== "#") history.replaceState(null, "", location.pathname);
  return route();
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

function setUpForm() {
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
  $("#filters").addEventListener("change", rerun);
  $("#clear-filters").addEventListener("click", () => {
    for (const field of document.querySelectorAll(".filter-fields input, .filter-fields select")) {
      if (field.type === "checkbox") field.checked = false;
      else field.value = "";
    }
    rerun();
  });
  $("#jump").addEventListener("change", () => {
    const month = $("#jump").value;
    location.hash = month ? "#" + new URLSearchParams({ month }) : "#";
  });
  $("#login").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await login($("#token").value)) route();
  });
}

function start() {
  setUpForm();
  setUpDrop();
  setUpSwipe();
  document.addEventListener("keydown", onKey);
  new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) loadMore();
  }, { rootMargin: "0px 0px 50% 0px" }).observe($("#more")); // half a screen ahead
  window.addEventListener("hashchange", route);
  // The footer's counts wait for the first screen: they cost the server more.
  const first = route();
  if (!location.hash.includes("token=")) Promise.resolve(first).finally(loadInfo);
}

start();
