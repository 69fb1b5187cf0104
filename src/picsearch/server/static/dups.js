// -- near-duplicates: groups, the keeper, moving the copies and undoing ------------------

function dupCard(group, member, keeper, index) {
  const isKeeper = member.id === keeper;
  const keeperAt = group.members.findIndex((m) => m.id === keeper);
  const similarity = group.similarity ? group.similarity[index][keeperAt] : null;
  const node = card(member);
  node.classList.toggle("keeper", isKeeper);
  const facts = [
    `${member.width} × ${member.height}`,
    formatBytes(member.size),
    member.taken ? new Date(member.taken).toLocaleDateString() : "",
    isKeeper ? "" : (similarity === null ? "" : `similarity ${similarity.toFixed(3)}`),
  ].filter(Boolean);
  const badge = isKeeper ? element("span", { className: "badge" }, ["Keeper"])
    : element("button", { type: "button", className: "button quiet make-keeper" }, ["Keep this one"]);
  if (!isKeeper) {
    badge.addEventListener("click", () => {
      group.chosen = member.id;
      renderGroup(group);
    });
  }
  return element("div", { className: "member" + (isKeeper ? " is-keeper" : ""),
    dataset: { id: String(member.id) } }, [
    node, element("p", { className: "facts" }, [facts.join(" · ")]), badge,
  ]);
}

function renderGroup(group) {
  const keeper = group.chosen ?? group.keeper;
  const others = group.members.filter((m) => m.id !== keeper);
  const best = Math.max(...group.pairs.map((pair) => pair.score));
  const move = element("button", { type: "button", className: "button move" },
    [`Move the other ${plural(others.length, "photo")}…`]);
  move.addEventListener("click", () => askMove(group, keeper, others));
  const section = group.node || element("section", { className: "group" });
  group.node = section;
  section.replaceChildren(
    element("h3", {}, [`${group.members.length} photos · similarity up to ${best.toFixed(3)}`]),
    element("div", { className: "members" }, group.members.map((m, i) => dupCard(group, m, keeper, i))),
    element("div", { className: "actions" }, [move]),
    element("div", { className: "move-form" }),
  );
  return section;
}

// The confirm step: a folder, then what would move, then the move itself.
function askMove(group, keeper, others) {
  const form = group.node.querySelector(".move-form");
  const folder = element("input", { type: "text", className: "folder", value: state.moveFolder || "",
    placeholder: "/home/me/duplicates", "aria-label": "Folder to move them into" });
  const check = element("button", { type: "submit", className: "button" }, ["Check"]);
  const plan = element("div", { className: "plan" });
  const ask = element("form", {}, [element("label", {}, ["Move into ", folder]), " ", check, plan]);
  ask.addEventListener("submit", async (event) => {
    event.preventDefault();
    state.moveFolder = folder.value.trim();
    const body = { keeper, move: others.map((m) => m.id), folder: state.moveFolder };
    try {
      const planned = await postJson("/api/duplicates/move", body);
      const confirm = element("button", { type: "button", className: "button confirm-move" },
        [`Move ${plural(planned.moves.length, "file")}`]);
      confirm.addEventListener("click", () => doMove(group, body));
      plan.replaceChildren(element("ul", {}, planned.moves.map((m) =>
        element("li", {}, [`${m.source} → ${m.destination}`]))), confirm);
    } catch (error) {
      plan.replaceChildren(element("p", { className: "error" }, [error.message]));
    }
  });
  form.replaceChildren(ask);
  folder.focus();
}

async function doMove(group, body) {
  const form = group.node.querySelector(".move-form");
  try {
    const done = await postJson("/api/duplicates/move", { ...body, confirm: true });
    const undo = element("button", { type: "button", className: "button undo" }, ["Undo"]);
    undo.addEventListener("click", () => undoMove(group, done.log));
    const skipped = done.skipped.length ? ` (${done.skipped.length} left: ${done.skipped.join("; ")})` : "";
    group.node.classList.add("moved");
    form.replaceChildren(element("p", { className: "done" },
      [`Moved ${plural(done.moves.length, "file")} into ${body.folder}${skipped}. `]), undo);
    setStatus(`Moved ${plural(done.moves.length, "file")}; the library follows them`);
    state.months = null;
  } catch (error) {
    form.append(element("p", { className: "error" }, [error.message]));
  }
}

async function undoMove(group, log) {
  const form = group.node.querySelector(".move-form");
  try {
    const done = await postJson("/api/duplicates/undo", { log });
    const refused = done.refused.length ? `; left: ${done.refused.join("; ")}` : "";
    group.node.classList.remove("moved");
    form.replaceChildren(element("p", { className: "done" },
      [`Moved ${plural(done.restored + done.already, "file")} back${refused}`]));
    setStatus("Move undone");
  } catch (error) {
    form.append(element("p", { className: "error" }, [error.message]));
  }
}

async function showDups() {
  state.views += 1;
  markNav("dups");
  show("dups");
  const dups = $("#dups");
  dups.replaceChildren();
  setStatus("Looking for near-duplicates…");
  const found = await load("/api/duplicates", (error) => {
    const unavailable = error.status === 404;
    setStatus(unavailable ? "Near-duplicate detection is not available in this installation."
      : error.message, !unavailable);
  });
  if (found === null) return;
  const groups = found.groups;
  setStatus(groups.length ? `${groups.length} group${groups.length === 1 ? "" : "s"} of near-duplicates`
    : "No near-duplicates found");
  dups.replaceChildren(...groups.map(renderGroup));
}
