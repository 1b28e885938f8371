// @ts-check
// The inspector's snapshot (GET /api/inspect/{topic}): the subscribers table and the open contexts.
import { ISSUER_OFF } from "./access.js";
import { dateTime, eventList, h, json, jsonDetails, message, say, secondsLeft, time } from "./dom.js";
import { explain, request } from "./http.js";
import { addStreamEvent, closeLive } from "./live.js";
import { leftOut } from "./notifications.js";
import { authHeaders, el, origin, state } from "./state.js";
/** @import { InspectView } from "../../fhircast/wire" */
/** @import { SyncErrorSeen } from "./notifications.js" */
/** @import { Subscriber } from "./state.js" */

/**
 * Reads the snapshot and renders it; false (with the reason shown) when the hub refused.
 * @returns {Promise<boolean>}
 */
export async function refresh() {
  if (!state.topic) return false;
  const gen = state.generation;
  let r;
  try {
    r = await request(`${origin}/api/inspect/${encodeURIComponent(state.topic)}`, { headers: authHeaders() }, 5000);
  } catch (e) {
    if (gen !== state.generation) return false;
    if (state.view) hubDown(e);
    else say(el.accessStatus, `Could not read the topic: the hub is not answering (${message(e)}).`, "error");
    return false;
  }
  if (gen !== state.generation) return false;
  if (r.status !== 200) {
    const why = r.status === 401 ? "the token is missing, invalid or expired"
      : r.status === 403 ? "the token may not inspect this topic" : `the hub answered ${r.status}`;
    const next = r.status === 401 || r.status === 403
      ? state.issuerOff ? ` ${ISSUER_OFF}` : " Press Get token for a new one from the development issuer, or paste one with the scope fhircast-hub/inspect."
      : "";
    say(el.accessStatus, `Refused: ${why} (${explain(r)}).${next}`, "error");
    // An expired or withdrawn token: the live socket would be refused too, over and over.
    if (r.status === 401 || r.status === 403) closeLive();
    return false;
  }
  if (state.hubDownSince) hubBack();
  const view = /** @type {InspectView} */ (r.body);
  state.view = view;
  state.viewAt = Date.now();
  // Recent events (newest first) fill the stream, and any gap a reconnect of the live socket left;
  // before the table, so the SyncError that ended a subscription is known when its row ends.
  for (const e of [...(view.events ?? [])].reverse()) addStreamEvent(e, false);
  trackSubscribers(view.subscribers ?? []);
  renderSubscribers();
  renderContexts();
  return true;
}

/**
 * The snapshot could not be read: say so, and stop showing the last one as if it were current.
 * @param {unknown} e why
 */
function hubDown(e) {
  if (!state.hubDownSince) state.hubDownSince = Date.now();
  el.hubDown.hidden = false;
  el.hubDown.textContent =
    `The hub is not answering since ${time(state.hubDownSince)} (${message(e)}). Below is what it last reported, at ${time(state.viewAt)}; the page keeps trying.`;
  state.rendered.subs = "";
  renderSubscribers();
}

function hubBack() {
  state.hubDownSince = 0;
  el.hubDown.hidden = true;
  el.hubDown.textContent = "";
  state.rendered.subs = "";
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let refreshTimer;
/** Coalesces the refreshes many frames ask for into one, soon. */
export function refreshSoon(ms = 250) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => void refresh(), ms);
}

/** @param {Subscriber} s */
function leaseLeft(s) {
  if (s.leaseSecondsLeft === null || s.leaseSecondsLeft === undefined) return "not connected yet";
  return secondsLeft(Math.max(0, s.leaseSecondsLeft - Math.floor((Date.now() - state.viewAt) / 1000)));
}

const ENDED_KEEP = 20;

/**
 * Remembers every subscriber seen; one the snapshot no longer lists has ended (denied, unsubscribed,
 * closed) and keeps its row, marked ended, with why when a SyncError about it came just before.
 * @param {readonly Subscriber[]} subs
 */
function trackSubscribers(subs) {
  const listed = new Set(subs.map((s) => s.id));
  for (const s of subs) state.known.set(s.id, { s, ended: null });
  for (const [id, k] of state.known) {
    if (listed.has(id) || k.ended) continue;
    // A SyncError about it newer than the last one its row showed: the hub ended it for that.
    const name = k.s.name ?? k.s.id;
    const last = k.s.lastSyncError?.at ?? "";
    const cause = state.syncErrors.findLast((e) => e.subscriber === name && String(e.at) > last);
    k.ended = cause
      ? { at: Date.now(), reason: "ended by the hub after a SyncError", syncError: cause }
      : { at: Date.now(), reason: "ended: unsubscribed or its socket closed", syncError: null };
  }
  const ended = [...state.known].flatMap(([id, k]) => (k.ended ? [{ id, at: k.ended.at }] : [])).sort((a, b) => b.at - a.at);
  for (const { id } of ended.slice(ENDED_KEEP)) state.known.delete(id);
}

/**
 * A SyncError about one subscriber, in its own words, e.g. "did not acknowledge … (Patient-close) at 09:56:48.634".
 * @param {SyncErrorSeen} e
 * @param {string | null} name
 */
function syncErrorText(e, name) {
  let d = e.diagnostics;
  if (name && d.startsWith(`${name} `)) d = d.slice(name.length + 1);
  if (e.eventName && e.eventId) d = d.replace(`: ${e.eventName} ${e.eventId}`, ` (${e.eventName})`);
  return `${d} at ${time(e.at)}`;
}

/** @param {Subscriber} s */
function ackState(s) {
  const parts = [];
  if (s.pendingAcks > 0) parts.push(`${s.pendingAcks} awaited`);
  if (s.missedAcks > 0) parts.push(`${s.missedAcks} missed`);
  return parts.length ? parts.join(", ") : "all answered";
}

export function renderSubscribers() {
  const subs = state.view?.subscribers ?? [];
  const ended = [...state.known.values()].flatMap((k) => (k.ended ? [{ s: k.s, ended: k.ended }] : [])).sort((a, b) => b.ended.at - a.ended.at);
  el.subsCount.textContent = ended.length ? `(${subs.length} active, ${ended.length} ended)` : `(${subs.length})`;
  const down = state.hubDownSince > 0;
  const key = json(subs) + ended.length + down + Math.floor((Date.now() - state.viewAt) / 1000);
  if (key === state.rendered.subs) return;
  state.rendered.subs = key;
  if (subs.length === 0 && ended.length === 0) {
    el.subsBody.replaceChildren(h("tr", {}, h("td", { colSpan: 6, className: "empty" }, "No subscriptions on this topic.")));
    return;
  }
  /** @param {Subscriber} s */
  const nameCell = (s) => h("th", { scope: "row" }, s.name ?? h("span", { className: "muted" }, `(unnamed) ${s.id.slice(0, 8)}`));
  el.subsBody.replaceChildren(
    ...subs.map((s) =>
      h("tr", { className: s.lastSyncError ? "has-error" : "", attrs: { "data-sub": s.id } },
        nameCell(s),
        h("td", { className: "events-cell" }, eventList(s.events)),
        // While the hub does not answer, its last word on a socket is no longer known to hold.
        h("td", { className: down ? "stale" : "" }, down ? "unknown: hub not answering" : s.connected ? "connected" : "waiting for connect"),
        h("td", { className: down ? "lease stale" : "lease" }, leaseLeft(s)),
        h("td", { className: s.missedAcks > 0 ? "warn" : "" }, ackState(s)),
        h("td", { className: "syncerror-cell" }, s.lastSyncError ? `${s.lastSyncError.reason} at ${time(s.lastSyncError.at)}` : "none"),
      )),
    ...ended.map(({ s, ended: e }) => {
      const err = e.syncError ? syncErrorText(e.syncError, s.name) : s.lastSyncError ? `${s.lastSyncError.reason} at ${time(s.lastSyncError.at)}` : "none";
      return h("tr", { className: err !== "none" ? "ended has-error" : "ended", attrs: { "data-sub": s.id, "data-ended": "true" } },
        nameCell(s),
        h("td", { className: "events-cell" }, eventList(s.events)),
        h("td", { className: "ended-cell" }, `${e.reason} (${time(e.at)})`),
        h("td", { className: "lease" }, "none"),
        h("td", { className: s.missedAcks > 0 ? "warn" : "" }, ackState(s)),
        h("td", { className: "syncerror-cell" }, err),
      );
    }),
  );
}

function renderContexts() {
  const ctxs = state.view?.contexts ?? [];
  const key = json(ctxs);
  if (key === state.rendered.contexts) return;
  state.rendered.contexts = key;
  // Keep open what the user opened.
  const open = new Set([...el.contexts.querySelectorAll("details[open]")].map((d) => /** @type {HTMLElement} */ (d).dataset.key));
  if (ctxs.length === 0) {
    el.contexts.replaceChildren(h("li", { className: "empty" }, "No open context."));
    return;
  }
  el.contexts.replaceChildren(
    ...ctxs.map((c) => {
      const ev = jsonDetails(`Open event${leftOut(c.event)}`, c.event);
      ev.dataset.key = `${c.anchor}:event`;
      const entries = /** @type {{ entry?: unknown[] } | undefined} */ (c.content)?.entry;
      const n = entries?.length ?? 0;
      const content = jsonDetails(`Content (${n} ${n === 1 ? "entry" : "entries"})${leftOut(c.content)}`, c.content);
      content.dataset.key = `${c.anchor}:content`;
      for (const d of [ev, content]) if (open.has(d.dataset.key)) d.open = true;
      return h("li", { className: c.current ? "ctx current" : "ctx", attrs: { "data-anchor": c.anchor } },
        h("div", { className: "ctx-line" },
          c.current ? h("strong", { className: "badge" }, "current") : null,
          h("span", { className: "anchor" }, c.anchor),
          h("span", { className: "version" }, `versionId ${c.versionId}`),
          h("span", { className: "muted opened" }, `opened by ${c.event?.event?.["hub.event"] ?? "?"}, event timestamp `,
            h("time", { dateTime: c.event?.timestamp ?? "", title: `the opening event's own timestamp: ${c.event?.timestamp}` }, dateTime(c.event?.timestamp))),
        ),
        h("div", { className: "ctx-json" }, ev, content),
      );
    }),
  );
}
