// -- browsing: the timeline, its months, folders and places ------------------------------

async function showTimeline(month) {
  state.upload = null;
  state.lastSearch = month ? "#month=" + month : "#";
  markNav("timeline");
  show("results");
  // The first page does not wait for the month list, unless it starts at a month.
  if (!month) {
    const first = timelineFeedFrom({}, {}, "photos, newest first");
    first.finally(() => loadMonths().then(() => { $("#jump").value = ""; }));
    return first;
  }
  const view = ++state.views;
  const chosen = (await loadMonths()).find((m) => m.month === month);
  if (view !== state.views) return;
  $("#jump").value = chosen ? chosen.month : "";
  // A month starts the timeline at its newest photo; the pages after it follow on.
  return timelineFeedFrom(chosen ? { cursor: chosen.cursor } : {}, {}, "photos, newest first");
}

function timelineFeedFrom(first, query, describe) {
  const start = first.cursor;
  const fetchPage = async (cursor) => {
    const params = new URLSearchParams({ limit: String(PAGE) });
    for (const [key, value] of Object.entries(query)) if (key !== "cursor") params.set(key, value);
    if (cursor || start) params.set("cursor", cursor || start);
    return api("/api/timeline?" + params);
  };
  return startFeed(fetchPage, {
    months: true,
    done: (feed) => setStatus(feed.count ? `${feed.count}${feed.finished ? "" : "+"} ${describe}`
      : "No photos here yet: index a folder with 'picsearch index FOLDER'"),
  });
}

async function loadMonths() {
  if (state.months) return state.months;
  try {
    state.months = (await api("/api/timeline/months")).months;
  } catch {
    return [];
  }
  const jump = $("#jump");
  const years = new Map();
  for (const month of state.months) {
    const year = month.month.slice(0, 4);
    if (!years.has(year)) years.set(year, element("optgroup", { label: year }));
    years.get(year).append(element("option", { value: month.month },
      [`${monthName(month.month)} (${month.count})`]));
  }
  jump.replaceChildren(element("option", { value: "" }, ["Jump to a month…"]), ...years.values());
  return state.months;
}

function browseList(title, entries, crumbs = []) {
  const browse = $("#browse");
  const items = entries.map(([label, count, href]) => element("li", {}, [
    element("a", { href }, [label]), " ", element("span", { className: "count" }, [String(count)]),
  ]));
  browse.replaceChildren(
    element("nav", { className: "crumbs" }, crumbs.map(([label, href]) =>
      element("a", { href }, [label]))),
    element("h2", {}, [title]),
    element("ul", { className: "places-list" }, items),
  );
}

async function showFolders(path) {
  state.upload = null;
  state.lastSearch = path ? "#" + new URLSearchParams({ folder: path }) : "#folders";
  markNav("folders");
  state.feed = null;
  show("results", true);
  $("#results").replaceChildren();
  const view = ++state.views;
  let found;
  try {
    found = await api("/api/folders" + (path ? "?" + new URLSearchParams({ path }) : ""));
  } catch (error) {
    $("#browse").replaceChildren();
    setStatus(error.message, true);
    return;
  }
  if (view !== state.views) return; // another view was asked for meanwhile
  const entries = found.folders.map((f) => [f.name, f.count, "#" + new URLSearchParams({ folder: f.path })]);
  const crumbs = [["All folders", "#folders"]];
  if (found.parent) crumbs.push(["Up", "#" + new URLSearchParams({ folder: found.parent })]);
  if (!found.folder) {
    browseList("Folders", entries.map(([, count, href], i) => [found.folders[i].path, count, href]));
    setStatus(plural(found.folders.length, "folder"));
    return;
  }
  browseList(found.folder.path, entries, crumbs);
  return timelineFeedFrom({}, { folder: found.folder.path }, `photos in ${found.folder.name}`);
}

async function showPlaces(country, city) {
  state.upload = null;
  markNav("places");
  state.feed = null;
  show("results", true);
  $("#results").replaceChildren();
  const query = country ? { country, ...(city ? { city } : {}) } : null;
  state.lastSearch = query ? "#" + new URLSearchParams(query) : "#places";
  const view = ++state.views;
  let found;
  try {
    found = await api("/api/places" + (country ? "?" + new URLSearchParams({ country }) : ""));
  } catch (error) {
    setStatus(error.message, true);
    return;
  }
  if (view !== state.views) return; // another view was asked for meanwhile
  const link = (name) => "#" + new URLSearchParams(country ? { country, city: name } : { country: name });
  const entries = found.places.map((p) => [p.name, p.count, link(p.name)]);
  const crumbs = country ? [["All places", "#places"]] : [];
  if (city) crumbs.push([country, "#" + new URLSearchParams({ country })]);
  browseList(city ? `${city}, ${country}` : country || "Places", city ? [] : entries, crumbs);
  if (!query) {
    setStatus(found.places.length ? plural(found.places.length, "country")
      .replace("countrys", "countries") : "No photo says where it was taken");
    return;
  }
  return timelineFeedFrom({}, query, `photos in ${city || country}`);
}
