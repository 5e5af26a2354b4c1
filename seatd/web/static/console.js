// seatd web console: progressive enhancement only; every page works without it.
// - dialogs (native <dialog>: focus kept inside, Escape closes) for disconnect and clear;
// - the sessions table follows the live feed (server-sent events) without reloading;
// - durations and the UTC / local clocks tick every second.
"use strict";

const started = Date.now();

function pad(n) { return String(n).padStart(2, "0"); }

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 3600)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

function tick() {
  const lang = document.body.dataset.lang || "en";
  const elapsed = (Date.now() - started) / 1000;
  for (const cell of document.querySelectorAll("[data-since]")) {
    // Durations count from the server's clock at render time, not the browser's.
    const serverNow = Number(cell.closest("[data-now]")?.dataset.now || document.querySelector("[data-clock]")?.dataset.epoch || 0);
    cell.textContent = clock(serverNow + elapsed - Number(cell.dataset.since));
  }
  for (const t of document.querySelectorAll("time[data-clock]")) {
    const offset = Number(t.dataset.offset || 0);
    const when = new Date((Number(t.dataset.epoch) + elapsed + offset) * 1000);
    t.textContent = new Intl.DateTimeFormat(lang, { timeStyle: "medium", timeZone: "UTC" }).format(when);
  }
}

function openEvict(link) {
  const dialog = document.getElementById("evict-dialog");
  if (!dialog) return false;
  const form = dialog.querySelector("form");
  form.action = form.dataset.actionTemplate.replace("{id}", link.dataset.evict);
  dialog.querySelector("[data-slot=session]").textContent = link.dataset.evict;
  dialog.querySelector("[data-slot=who]").textContent = link.dataset.who;
  dialog.showModal();
  const reason = dialog.querySelector("input[name=reason]");
  reason.focus();
  reason.select();
  return true;
}

document.addEventListener("click", (event) => {
  const evict = event.target.closest("[data-evict]");
  if (evict && openEvict(evict)) { event.preventDefault(); return; }
  const opener = event.target.closest("[data-dialog]");
  if (opener) { document.getElementById(opener.dataset.dialog)?.showModal(); return; }
  const closer = event.target.closest("[data-close]");
  if (closer) closer.closest("dialog")?.close();
});

document.addEventListener("change", (event) => {
  if (event.target.matches("[data-autosubmit]")) event.target.form.submit();
});

// Merge a freshly rendered copy of a table body into the page: rows that stay keep their
// element (and the keyboard focus inside them), gone rows leave, new rows arrive in order.
function mergeRows(current, fresh) {
  const keep = new Map([...current.children].map((row) => [row.dataset.id, row]));
  let previous = null;
  for (const row of [...fresh.children]) {
    const existing = row.dataset.id ? keep.get(row.dataset.id) : undefined;
    const node = existing || row;
    if (existing) keep.delete(row.dataset.id);
    current.insertBefore(node, previous ? previous.nextSibling : current.firstChild);
    previous = node;
  }
  for (const gone of keep.values()) gone.remove();
}

async function refresh(live) {
  const response = await fetch(live.dataset.fragment, { credentials: "same-origin" });
  if (!response.ok) return;
  const fresh = document.createElement("div");
  fresh.innerHTML = await response.text();
  const ids = ["sessions-body", "queue-body"];
  const same = ids.every((id) => !document.getElementById(id) === !fresh.querySelector(`#${id}`));
  if (!same) {
    // The queue appeared or emptied: take the whole live part.
    live.innerHTML = fresh.innerHTML;
    tick();
    return;
  }
  for (const id of ids) {
    const mine = document.getElementById(id);
    if (mine) mergeRows(mine, fresh.querySelector(`#${id}`));
  }
  document.getElementById("seat-summary").replaceWith(fresh.querySelector("#seat-summary"));
  tick();
}

function follow(live) {
  let pending = null;
  const source = new EventSource(live.dataset.feed, { withCredentials: true });
  // A burst of journal entries (a reattach storm) is one refresh, not one per entry.
  // The feed names its events `journal` (one per journal entry).
  source.addEventListener("journal", () => {
    if (pending) return;
    pending = setTimeout(() => { pending = null; refresh(live); }, 150);
  });
  source.onerror = () => { live.dataset.feedState = "reconnecting"; };
  source.onopen = () => { live.dataset.feedState = "open"; };
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (live && live.dataset.feed) follow(live);
  tick();
  setInterval(tick, 1000);
});
