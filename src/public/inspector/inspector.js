// The hub's web inspector and sandbox (docs/inspector.md). Plain browser module, no framework.
// Inspector: GET /api/inspect/{topic} (snapshot) and the live socket /api/inspect/{topic}/live.
// Sandbox: subscriber apps built on the project's own client (/fhircast-client.js, src/client), and
// publishing from catalog templates. Everything the hub sends is shown as text, never as markup.
import { template } from "./templates.js";

const $ = (sel, root = document) => root.querySelector(sel);

/** Creates an element with properties, attributes (`attrs`) and children (strings become text). */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  const { attrs, ...rest } = props;
  Object.assign(el, rest);
  for (const [k, v] of Object.entries(attrs ?? {})) el.setAttribute(k, v);
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c);
  return el;
}

const json = (v) => JSON.stringify(v, null, 2);
const pad = (n, w = 2) => String(n).padStart(w, "0");
/** Local time of day with milliseconds (24 h), e.g. 09:56:40.078. */
const time = (iso) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
};
/** Local date and time, e.g. 2026-11-30 09:56:40.078: an event's own timestamp may be from any day. */
const dateTime = (iso) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time(iso)}`;
};
/** Seconds left as "59 min 49 s" (or "2 h 5 min"). */
function secondsLeft(left) {
  const m = Math.floor(left / 60);
  return m >= 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m} min ${pad(left % 60)} s`;
}
/** The anchor (`Type/id`) named by an event's context, for the one-line summaries. */
function anchorOf(n) {
  const ctx = n?.event?.context ?? [];
  for (const key of ["report", "study", "encounter", "patient"]) {
    const e = ctx.find((x) => x.key === key);
    if (e?.resource) return `${e.resource.resourceType}/${e.resource.id}`;
    if (e?.reference?.reference) return e.reference.reference;
  }
  return "";
}
/** A SyncError's explanation (its OperationOutcome's diagnostics), for the one-line summary. */
function diagnosticsOf(n) {
  const d = syncErrorOf(n).diagnostics;
  return d.length > 90 ? `${d.slice(0, 90)}…` : d;
}
/** A SyncError's diagnostics and the subscriber and event it names (its OperationOutcome's codings). */
function syncErrorOf(n) {
  const issue = n?.event?.context?.find((e) => e.key === "operationoutcome")?.resource?.issue?.[0];
  const code = (suffix) => issue?.details?.coding?.find((c) => String(c.system ?? "").endsWith(`/${suffix}`))?.code;
  return { diagnostics: issue?.diagnostics ?? "", subscriber: code("subscribername"), eventName: code("eventname"), eventId: code("eventid"), at: n?.timestamp };
}
/** The hub's marker for JSON it left out of a snapshot to stay within its budget (docs/inspector.md). */
function leftOut(value) {
  const t = value?.truncated;
  if (!t) return "";
  const what = t.entries ? `${t.entries} ${t.entries === 1 ? "entry" : "entries"}, ` : "";
  return ` — ${what}${t.bytes} bytes left out (too large for the snapshot)`;
}
/** A <details> with a summary and the JSON, rendered only when opened (large contents stay cheap). */
function jsonDetails(label, value, spoken = "") {
  const pre = h("pre", { className: "json", tabIndex: 0 });
  const summary = h("summary", {}, label, spoken ? h("span", { className: "visually-hidden" }, ` ${spoken}`) : null);
  const d = h("details", { className: "json-details" }, summary, pre);
  d.addEventListener("toggle", () => {
    if (d.open && !pre.textContent) pre.textContent = json(value);
  });
  return d;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the client bundle ----------------------------------------------------------------------------

let lib;
try {
  lib = await import("../fhircast-client.js");
} catch (e) {
  document.body.prepend(
    h("p", { className: "fatal", attrs: { role: "alert" } },
      `The subscriber client bundle (/fhircast-client.js) did not load (${e.message}). Build it with "npm run build:client" (npm start does).`),
  );
  throw e;
}

// ---- state ----------------------------------------------------------------------------------------

const origin = location.origin;
const hubUrl = `${origin}/api/hub`;
const state = {
  topic: "",
  token: "",
  view: null,
  viewAt: 0,
  live: null,
  liveWanted: false,
  liveRetry: 0,
  seen: new Set(),
  lastEvent: undefined,
  catalog: new lib.EventCatalog(),
  apps: [],
  appCount: 0,
  generation: 0,
  rendered: { contexts: "", subs: "" },
  templateDirty: false,
  /** Every subscriber this page saw on the topic, by id; one the hub no longer lists is kept, ended. */
  known: new Map(),
  /** SyncErrors seen in the stream (subscriber, diagnostics, timestamp), oldest first. */
  syncErrors: [],
  /** The token the development issuer gave, and for which topic (a new topic needs a new one). */
  issued: null,
  /** The development issuer answered 404: it is off on this hub (AUTH_MODE is not dev). */
  issuerOff: false,
  /** Since when the hub does not answer (a failed snapshot read), or 0. */
  hubDownSince: 0,
  /** The app the status line under "Connect app" speaks of: the last one connected or in trouble. */
  statusApp: "",
};

const ANSWERS = [
  { value: "200", label: "200: applied" },
  { value: "409", label: "409: refuse (conflict)" },
  { value: "500", label: "500: failed" },
  { value: "none", label: "no answer at all" },
];

const el = {
  access: $("#access"),
  topic: $("#topic"),
  clientId: $("#client-id"),
  scopes: $("#scopes"),
  token: $("#token"),
  getToken: $("#get-token"),
  accessStatus: $("#access-status"),
  inspectedTopic: $("#inspected-topic"),
  liveState: $("#live-state"),
  refresh: $("#refresh"),
  subsBody: $("#subscribers tbody"),
  hubDown: $("#hub-down"),
  subsCount: $("#subs-count"),
  contexts: $("#contexts"),
  stream: $("#stream"),
  streamCount: $("#stream-count"),
  newApp: $("#new-app"),
  appName: $("#app-name"),
  appAnswer: $("#app-answer"),
  appEvents: $("#app-events"),
  appStatus: $("#app-status"),
  apps: $("#apps"),
  appsCount: $("#apps-count"),
  publish: $("#publish"),
  pubEvent: $("#pub-event"),
  pubBody: $("#pub-body"),
  pubResult: $("#pub-result"),
  pubTemplate: $("#pub-template"),
};

function say(target, text, kind = "info") {
  target.textContent = text;
  target.dataset.kind = kind;
}

function authHeaders(extra = {}) {
  return state.token ? { ...extra, Authorization: `Bearer ${state.token}` } : extra;
}

/** fetch with a timeout; returns status, text and parsed JSON (when it is JSON). */
async function request(url, init = {}, timeoutMs = 15_000) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.status, statusText: res.statusText, text, body, headers: res.headers };
}

/** The hub's explanation of a refusal: OperationOutcome diagnostics, OAuth error, or the text. */
function explain(r) {
  const b = r.body;
  if (b?.resourceType === "OperationOutcome") return b.issue?.map((i) => i.diagnostics).join("; ");
  if (b?.error) return `${b.error}${b.error_description ? `: ${b.error_description}` : ""}`;
  return r.text.slice(0, 500);
}

// ---- access: topic and token ---------------------------------------------------------------------

/** Get token: a new token from the development issuer, then the topic opens with it. */
async function getToken() {
  const topic = el.topic.value.trim();
  if (!topic) {
    say(el.accessStatus, "Enter a topic first: tokens from the development issuer are bound to one topic.", "error");
    el.topic.focus();
    return;
  }
  if ((await issueToken(topic)) === "ok") await openTopic();
}

/**
 * Asks the development issuer for a token bound to `topic` and puts it in the token field.
 * "off" when the issuer is off on this hub (AUTH_MODE is not dev), "failed" (said why) otherwise.
 */
async function issueToken(topic) {
  say(el.accessStatus, "Asking the development issuer for a token…");
  try {
    const r = await request(`${origin}/auth/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: el.clientId.value.trim(),
        scope: el.scopes.value.trim(),
        "hub.topic": topic,
      }).toString(),
    });
    if (r.status === 404) {
      state.issuerOff = true;
      say(el.accessStatus, ISSUER_OFF, "error");
      return "off";
    }
    state.issuerOff = false;
    if (r.status !== 200 || !r.body?.access_token) {
      say(el.accessStatus, `The issuer refused (${r.status}): ${explain(r)}`, "error");
      return "failed";
    }
    el.token.value = r.body.access_token;
    state.issued = { token: r.body.access_token, topic };
    say(el.accessStatus, `Token for client ${el.clientId.value.trim()} on this topic, scopes "${r.body.scope}", valid ${r.body.expires_in} s.`, "ok");
    return "ok";
  } catch (e) {
    say(el.accessStatus, `Could not reach the issuer: ${e.message}`, "error");
    return "failed";
  }
}

const ISSUER_OFF =
  "This hub's development issuer is off (AUTH_MODE is not dev). Paste a token from your authorization server with the scope fhircast-hub/inspect into Access token, or leave it empty if the hub runs AUTH_MODE=open.";

/**
 * Open topic, the first step: without a token (or with one the development issuer gave for another
 * topic) it first asks the development issuer for one, so on `npm start` one click opens the topic.
 * Where the issuer is off it goes on without a token (AUTH_MODE=open needs none) and a refusal says
 * what to paste.
 */
async function openTopic() {
  const topic = el.topic.value.trim();
  if (!topic) {
    say(el.accessStatus, "Enter a topic.", "error");
    el.topic.focus();
    return;
  }
  const pasted = el.token.value.trim();
  const issuedForOther = state.issued && pasted === state.issued.token && state.issued.topic !== topic;
  if ((!pasted || issuedForOther) && !state.issuerOff) {
    const got = await issueToken(topic);
    if (got === "failed") return;
    if (got === "off" && issuedForOther) el.token.value = "";
  }
  if (topic !== state.topic) await closeAllApps();
  closeLive();
  state.generation++;
  state.topic = topic;
  state.token = el.token.value.trim();
  state.view = null;
  state.seen.clear();
  state.rendered = { contexts: "", subs: "" };
  state.known.clear();
  state.syncErrors = [];
  state.hubDownSince = 0;
  el.stream.replaceChildren();
  el.streamCount.textContent = "";
  el.inspectedTopic.textContent = topic;
  const url = new URL(location.href);
  url.searchParams.set("topic", topic);
  history.replaceState(null, "", url);
  document.title = `${topic}: FHIRcast Hub inspector`;
  const ok = await refresh();
  if (!ok) return;
  say(el.accessStatus, `Inspecting ${topic}.`, "ok");
  el.refresh.disabled = false;
  state.liveWanted = true;
  state.liveRetry = 0;
  openLive(state.generation);
  newTemplate();
}

// ---- inspector: snapshot ---------------------------------------------------------------------------

/** Reads the snapshot and renders it; false (with the reason shown) when the hub refused. */
async function refresh() {
  if (!state.topic) return false;
  const gen = state.generation;
  let r;
  try {
    r = await request(`${origin}/api/inspect/${encodeURIComponent(state.topic)}`, { headers: authHeaders() }, 5000);
  } catch (e) {
    if (gen !== state.generation) return false;
    if (state.view) hubDown(e);
    else say(el.accessStatus, `Could not read the topic: the hub is not answering (${e.message}).`, "error");
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
  state.view = r.body;
  state.viewAt = Date.now();
  // Recent events (newest first) fill the stream, and any gap a reconnect of the live socket left;
  // before the table, so the SyncError that ended a subscription is known when its row ends.
  for (const e of [...(state.view.events ?? [])].reverse()) addStreamEvent(e, false);
  trackSubscribers(state.view.subscribers ?? []);
  renderSubscribers();
  renderContexts();
  return true;
}

/** The snapshot could not be read: say so, and stop showing the last one as if it were current. */
function hubDown(e) {
  if (!state.hubDownSince) state.hubDownSince = Date.now();
  el.hubDown.hidden = false;
  el.hubDown.textContent =
    `The hub is not answering since ${time(state.hubDownSince)} (${e.message}). Below is what it last reported, at ${time(state.viewAt)}; the page keeps trying.`;
  state.rendered.subs = "";
  renderSubscribers();
}

function hubBack() {
  state.hubDownSince = 0;
  el.hubDown.hidden = true;
  el.hubDown.textContent = "";
  state.rendered.subs = "";
}

let refreshTimer;
/** Coalesces the refreshes many frames ask for into one, soon. */
function refreshSoon(ms = 250) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => void refresh(), ms);
}

function leaseLeft(s) {
  if (s.leaseSecondsLeft === null || s.leaseSecondsLeft === undefined) return "not connected yet";
  return secondsLeft(Math.max(0, s.leaseSecondsLeft - Math.floor((Date.now() - state.viewAt) / 1000)));
}

const ENDED_KEEP = 20;

/**
 * Remembers every subscriber seen; one the snapshot no longer lists has ended (denied, unsubscribed,
 * closed) and keeps its row, marked ended, with why when a SyncError about it came just before.
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
  const ended = [...state.known].filter(([, k]) => k.ended).sort((a, b) => b[1].ended.at - a[1].ended.at);
  for (const [id] of ended.slice(ENDED_KEEP)) state.known.delete(id);
}

/** A SyncError about one subscriber, in its own words, e.g. "did not acknowledge … (Patient-close) at 09:56:48.634". */
function syncErrorText(e, name) {
  let d = e.diagnostics;
  if (name && d.startsWith(`${name} `)) d = d.slice(name.length + 1);
  if (e.eventName && e.eventId) d = d.replace(`: ${e.eventName} ${e.eventId}`, ` (${e.eventName})`);
  return `${d} at ${time(e.at)}`;
}

/** A list of event names: short ones in full, long ones as a count that opens to the list. */
function eventList(events) {
  if (events.length <= 3) return events.join(", ");
  return h("details", { className: "event-list" }, h("summary", {}, `${events.length} events`), h("span", {}, events.join(", ")));
}

function ackState(s) {
  const parts = [];
  if (s.pendingAcks > 0) parts.push(`${s.pendingAcks} awaited`);
  if (s.missedAcks > 0) parts.push(`${s.missedAcks} missed`);
  return parts.length ? parts.join(", ") : "all answered";
}

function renderSubscribers() {
  const subs = state.view?.subscribers ?? [];
  const ended = [...state.known.values()].filter((k) => k.ended).sort((a, b) => b.ended.at - a.ended.at);
  el.subsCount.textContent = ended.length ? `(${subs.length} active, ${ended.length} ended)` : `(${subs.length})`;
  const down = state.hubDownSince > 0;
  const key = json(subs) + ended.length + down + Math.floor((Date.now() - state.viewAt) / 1000);
  if (key === state.rendered.subs) return;
  state.rendered.subs = key;
  if (subs.length === 0 && ended.length === 0) {
    el.subsBody.replaceChildren(h("tr", {}, h("td", { colSpan: 6, className: "empty" }, "No subscriptions on this topic.")));
    return;
  }
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
  const open = new Set([...el.contexts.querySelectorAll("details[open]")].map((d) => d.dataset.key));
  if (ctxs.length === 0) {
    el.contexts.replaceChildren(h("li", { className: "empty" }, "No open context."));
    return;
  }
  el.contexts.replaceChildren(
    ...ctxs.map((c) => {
      const ev = jsonDetails(`Open event${leftOut(c.event)}`, c.event);
      ev.dataset.key = `${c.anchor}:event`;
      const n = c.content?.entry?.length ?? 0;
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

// ---- inspector: live stream ----------------------------------------------------------------------

const STREAM_LIMIT = 500;

function addStreamEvent({ seq, acceptedAt, event }, live) {
  if (state.seen.has(seq)) return;
  state.seen.add(seq);
  const name = event?.event?.["hub.event"] ?? "?";
  if (name !== "SyncError") state.lastEvent = { id: event.id, name };
  else {
    state.syncErrors.push(syncErrorOf(event));
    if (state.syncErrors.length > STREAM_LIMIT) state.syncErrors.shift();
  }
  const li = h("li", { className: name === "SyncError" ? "ev syncerror" : "ev", attrs: { "data-seq": String(seq), "data-event": name } },
    h("div", { className: "ev-line" },
      h("span", { className: "seq" }, `#${seq}`),
      h("time", { dateTime: acceptedAt, title: `accepted by the hub ${dateTime(acceptedAt)}` }, `accepted ${time(acceptedAt)}`),
      h("strong", { className: "ev-name" }, name),
      h("span", { className: name === "SyncError" ? "diagnostics" : "anchor" }, name === "SyncError" ? diagnosticsOf(event) : anchorOf(event)),
      event?.event?.["context.versionId"] ? h("span", { className: "version", title: `context.versionId ${event.event["context.versionId"]}` }, `v ${String(event.event["context.versionId"]).slice(0, 8)}`) : null,
    ),
    jsonDetails(`JSON${leftOut(event)}`, event, `of ${name} #${seq}`),
  );
  // Newest first: insert before the first item with a lower seq.
  const after = [...el.stream.children].find((x) => Number(x.dataset.seq) < seq);
  el.stream.insertBefore(li, after ?? null);
  while (el.stream.children.length > STREAM_LIMIT) el.stream.lastElementChild.remove();
  el.streamCount.textContent = `(${state.seen.size})`;
  if (live) li.classList.add("fresh");
}

function setLiveState(text, kind) {
  el.liveState.textContent = text;
  el.liveState.dataset.kind = kind;
}

function openLive(gen) {
  if (gen !== state.generation || !state.liveWanted) return;
  const wsOrigin = origin.replace(/^http/, "ws");
  const q = state.token ? `?access_token=${encodeURIComponent(state.token)}` : "";
  const ws = new WebSocket(`${wsOrigin}/api/inspect/${encodeURIComponent(state.topic)}/live${q}`);
  state.live = ws;
  setLiveState("connecting", "wait");
  ws.addEventListener("open", () => {
    state.liveRetry = 0;
    setLiveState("live", "ok");
    refreshSoon(0); // anything distributed while the socket was down
  });
  ws.addEventListener("message", (e) => {
    let f;
    try {
      f = JSON.parse(e.data);
    } catch {
      return;
    }
    if (f.type === "event") {
      // Read: the hub closes a live socket whose event frames go unanswered (SOCKET_BUFFER_BYTES).
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ seen: f.seq }));
      addStreamEvent(f, true);
      refreshSoon();
    } else if (f.type === "changed") refreshSoon();
  });
  ws.addEventListener("close", (e) => {
    if (state.live === ws) state.live = null;
    if (gen !== state.generation || !state.liveWanted) return;
    const delay = Math.min(5000, 1000 * 2 ** state.liveRetry++); // a local hub restarts in seconds
    setLiveState(`disconnected (${e.code}); retrying in ${Math.round(delay / 1000)} s`, "error");
    refreshSoon(0); // does the hub still answer? If not, the table stops claiming what it last said
    setTimeout(() => openLive(gen), delay);
  });
}

function closeLive() {
  state.liveWanted = false;
  if (state.live) {
    state.live.close(1000, "inspector closed");
    state.live = null;
  }
  setLiveState("not connected", "off");
}

// The lease column and the apps' leases count down between snapshots; a snapshot every 10 s keeps acks and leases true.
setInterval(() => {
  if (state.view) renderSubscribers();
  for (const a of state.apps) a.renderLease();
}, 1000);
setInterval(() => {
  if (state.view && document.visibilityState === "visible") void refresh();
}, 10_000);

// ---- sandbox: subscriber apps ----------------------------------------------------------------------

function fillAnswers(select, value = "200") {
  select.replaceChildren(...ANSWERS.map((a) => h("option", { value: a.value, selected: a.value === value }, a.label)));
}

function eventNames() {
  return state.catalog.events.map((e) => e.name);
}

function renderEventChoices() {
  const standard = new Set(state.catalog.events.filter((e) => e.maturity > 0).map((e) => e.name));
  el.appEvents.replaceChildren(
    ...eventNames().map((name, i) => {
      const id = `ev-${i}`;
      return h("div", { className: "check" },
        h("input", { type: "checkbox", id, name: "events", value: name, checked: standard.has(name) }),
        h("label", { htmlFor: id }, name));
    }),
  );
  summarizeEvents();
}

function checkEvents(pred) {
  for (const c of el.appEvents.querySelectorAll("input[type=checkbox]")) c.checked = pred(c.value);
  summarizeEvents();
}

function summarizeEvents() {
  const chosen = [...el.appEvents.querySelectorAll("input:checked")].map((c) => c.value);
  $("#events-summary").textContent = chosen.length <= 3 ? chosen.join(", ") || "none" : `${chosen.length} chosen (${chosen.slice(0, 3).join(", ")}, …)`;
}

class SandboxApp {
  constructor(name, events, answer) {
    this.id = `app-${++state.appCount}`;
    this.name = name;
    this.answer = answer;
    this.frameCount = 0;
    this.node = $("#app-template").content.firstElementChild.cloneNode(true);
    this.node.id = this.id;
    this.node.dataset.name = name;
    const title = $(".app-title", this.node);
    title.id = `${this.id}-title`;
    title.textContent = name;
    this.node.setAttribute("aria-labelledby", title.id);
    const select = $(".app-answer-select", this.node);
    select.id = `${this.id}-answer`;
    $(".answer-label", this.node).htmlFor = select.id;
    fillAnswers(select, answer);
    select.addEventListener("change", () => {
      this.answer = select.value;
      this.note(`answers from now on: ${ANSWERS.find((a) => a.value === select.value).label}`);
    });
    this.frames = $(".frames", this.node);
    this.frames.setAttribute("aria-labelledby", `${this.id}-frames`);
    $(".frames-title", this.node).id = `${this.id}-frames`;
    this.stateEl = $(".app-state", this.node);
    this.granted = $(".app-granted", this.node);
    this.disconnectBtn = $(".app-disconnect", this.node);
    this.removeBtn = $(".app-remove", this.node);
    this.disconnectBtn.addEventListener("click", () => void this.close());
    this.removeBtn.addEventListener("click", () => this.remove());
    el.apps.append(this.node);

    const token = () => state.token;
    this.client = new lib.FhircastClient({
      hubUrl,
      topic: state.topic,
      events,
      token,
      subscriberName: name,
      webSocket: (url) => this.socket(url),
    });
    this.client.on("event", () => (this.answer === "none" ? 200 : Number(this.answer)));
    this.client.on("confirmed", (c) => {
      this.setState("connected", "ok");
      this.leaseUntil = Date.now() + c.leaseSeconds * 1000;
      this.leaseEl = h("span", { className: "app-lease" });
      this.granted.replaceChildren("Granted: ", eventList(c.events), " ", this.leaseEl);
      this.renderLease();
    });
    this.client.on("denied", (d) => {
      this.setState(`denied: ${d.reason ?? "no reason given"}`, "error");
      this.ended();
    });
    this.client.on("disconnect", (d) => this.setState(`dropped (${d.code}); re-subscribing`, "error"));
    // While the hub is down every attempt fails the same way: one note, updated, not one per attempt.
    this.client.on("reconnect", (r) => {
      this.retryAttempt = r.attempt;
      this.retryNote(`re-subscribing: attempt ${r.attempt}${this.lastRetryError ? ` (the last one failed: ${this.lastRetryError})` : ""}`);
    });
    this.client.on("reconnected", (r) => {
      this.setState("connected", "ok");
      this.retryNote(`re-subscribed after ${r.attempts} ${r.attempts === 1 ? "attempt" : "attempts"}, ${Math.round(r.downMs / 1000)} s without the hub`);
      this.retryEl = undefined;
      this.lastRetryError = undefined;
    });
    this.client.on("error", (e) => {
      if (e.during === "reconnect") {
        // A browser says only "Failed to fetch" (or the like) when nothing answers at the hub's address.
        this.lastRetryError = /failed to fetch|networkerror|load failed/i.test(e.error.message) ? "the hub is not answering" : e.error.message;
        this.retryNote(`re-subscribing: attempt ${this.retryAttempt ?? 1} failed: ${this.lastRetryError}; trying again`);
      } else this.note(`client (${e.during}): ${e.error.message}`);
    });
  }

  /** The one note about re-subscribing, updated in place while the attempts go on. */
  retryNote(text) {
    if (this.retryEl?.isConnected) this.retryEl.querySelector(".note-text").textContent = text;
    else this.retryEl = this.note(text);
    this.retryEl.dataset.retry = "true";
  }

  renderLease() {
    if (!this.leaseEl) return;
    this.leaseEl.textContent = this.isOver ? "Lease ended." : `Lease left ${secondsLeft(Math.max(0, Math.round((this.leaseUntil - Date.now()) / 1000)))}.`;
  }

  setState(text, kind) {
    this.stateEl.textContent = text;
    this.stateEl.dataset.kind = kind;
    this.node.dataset.state = kind;
    // The status line under "Connect app" tells the latest about the apps, never a stale "connected".
    if (kind === "error") state.statusApp = this.id;
    if (state.statusApp === this.id) say(el.appStatus, kind === "ok" ? `${this.name} is ${text}.` : `${this.name}: ${text}.`, kind === "ok" ? "ok" : kind === "error" ? "error" : "info");
  }

  /**
   * The client's WebSocket, wrapped to show every frame in both directions and, when this app
   * answers "not at all", to hold back its acknowledgements (so the hub's ack timeout is seen).
   */
  socket(url) {
    const ws = new WebSocket(url);
    ws.addEventListener("message", (e) => this.frame("in", e.data));
    ws.addEventListener("close", (e) => this.note(`socket closed ${e.code}${e.reason ? ` ${e.reason}` : ""}`));
    const app = this;
    return {
      get readyState() {
        return ws.readyState;
      },
      send(data) {
        if (app.answer === "none" && /"status"/.test(data)) {
          // The client made an acknowledgement; this app is set to give none, so it is never sent.
          app.frame("held", data);
          return;
        }
        app.frame("out", data);
        ws.send(data);
      },
      close: (code, reason) => ws.close(code, reason),
      addEventListener: (type, listener) => ws.addEventListener(type, listener),
    };
  }

  frame(direction, data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      f = data;
    }
    let label;
    let kind = "event";
    if (direction !== "in") {
      label = direction === "held" ? "no acknowledgement sent (this app answers with no answer at all)" : `ack ${f.status ?? ""}`;
      kind = "ack";
    } else if (f?.["hub.mode"] === "subscribe") {
      label = "confirmation";
      kind = "control";
    } else if (f?.["hub.mode"] === "denied") {
      label = `denial: ${f["hub.reason"] ?? ""}`;
      kind = "denial";
    } else if (f?.event?.["hub.event"]) {
      label = `${f.event["hub.event"]} ${anchorOf(f)}`;
      kind = f.event["hub.event"] === "SyncError" ? "syncerror" : "event";
    } else label = typeof f === "string" ? f.slice(0, 80) : "frame";
    const arrow = direction === "in" ? "from hub" : "to hub";
    this.frameCount++;
    const li = h("li", { className: `frame ${kind} ${direction}`, attrs: { "data-kind": kind, "data-direction": direction, "data-event": f?.event?.["hub.event"] ?? "" } },
      h("div", { className: "frame-line" },
        h("span", { className: "dir" }, direction === "held" ? "not sent" : arrow),
        h("span", {}, label),
      ),
      jsonDetails(direction === "held" ? "JSON withheld" : "JSON", f, `of this frame: ${label}`),
    );
    this.frames.prepend(li);
    while (this.frames.children.length > 200) this.frames.lastElementChild.remove();
    $(".frames-count", this.node).textContent = `(${this.frameCount})`;
  }

  note(text) {
    const li = h("li", { className: "frame note" }, h("div", { className: "frame-line" }, h("span", { className: "dir" }, "note"), h("span", { className: "note-text" }, text)));
    this.frames.prepend(li);
    return li;
  }

  /** The subscription is over (denied, failed or closed): offer Remove instead of Disconnect. */
  ended() {
    this.isOver = true;
    this.renderLease();
    const hadFocus = document.activeElement === this.disconnectBtn;
    this.disconnectBtn.hidden = true;
    this.removeBtn.hidden = false;
    if (hadFocus) this.removeBtn.focus();
  }

  async connect() {
    this.setState("connecting", "wait");
    try {
      await this.client.connect();
      return true;
    } catch (e) {
      this.setState(`failed: ${e.message}`, "error");
      this.ended();
      return false;
    }
  }

  async close() {
    this.disconnectBtn.disabled = true;
    this.setState("closing", "wait");
    try {
      const r = await Promise.race([this.client.close(), sleep(10_000).then(() => ({ code: 0, reason: "timed out" }))]);
      this.setState(`closed (${r.code}${r.reason ? ` ${r.reason}` : ""})`, "off");
    } catch (e) {
      this.setState(`close failed: ${e.message}`, "error");
    }
    this.ended();
    this.removeBtn.focus();
  }

  remove() {
    state.apps = state.apps.filter((a) => a !== this);
    this.node.remove();
    countApps();
    el.appName.focus();
  }
}

async function addApp() {
  if (!state.topic) {
    say(el.appStatus, "Open a topic first.", "error");
    el.topic.focus();
    return;
  }
  const name = el.appName.value.trim() || `App ${state.appCount + 1}`;
  const events = [...el.appEvents.querySelectorAll("input:checked")].map((c) => c.value);
  if (events.length === 0) {
    say(el.appStatus, "Choose at least one event.", "error");
    return;
  }
  const app = new SandboxApp(name, events, el.appAnswer.value);
  state.apps.push(app);
  countApps();
  state.statusApp = app.id; // from now on the status line follows this app's state
  say(el.appStatus, `Connecting ${name}…`);
  const ok = await app.connect();
  if (!ok && state.statusApp === app.id) say(el.appStatus, `${name} could not connect: see its card.`, "error");
  el.appName.value = `App ${state.appCount + 1}`;
}

async function closeAllApps() {
  const apps = state.apps.splice(0);
  await Promise.all(apps.map((a) => Promise.race([a.client.close().catch(() => undefined), sleep(5000)])));
  for (const a of apps) a.node.remove();
  countApps();
}

/** The number of app cards: with more than one row of them, the rest scroll within their area. */
function countApps() {
  const n = state.apps.length;
  const more = el.apps.scrollHeight > el.apps.clientHeight + 1;
  el.appsCount.textContent = n === 0 ? "" : more ? `(${n}; scroll the cards for more)` : `(${n})`;
}

// ---- sandbox: publish ------------------------------------------------------------------------------

function renderPublishChoices() {
  const current = el.pubEvent.value || "Patient-open";
  el.pubEvent.replaceChildren(...eventNames().map((n) => h("option", { value: n, selected: n === current }, n)));
}

async function newTemplate({ fresh = true } = {}) {
  if (fresh && state.topic) await refresh(); // the current versions, for updates
  const body = template(lib, state.catalog, state.topic || "(open a topic)", el.pubEvent.value, state.view, { lastEvent: state.lastEvent });
  el.pubBody.value = json(body);
  state.templateDirty = false;
}

async function publish() {
  if (!state.topic) {
    say(el.pubResult, "Open a topic first.", "error");
    return;
  }
  let body;
  try {
    body = JSON.parse(el.pubBody.value);
  } catch (e) {
    say(el.pubResult, `The body is not JSON: ${e.message}`, "error");
    return;
  }
  el.pubResult.replaceChildren(h("p", {}, "Publishing…"));
  let r;
  try {
    r = await request(hubUrl, { method: "POST", headers: authHeaders({ "Content-Type": "application/json" }), body: JSON.stringify(body) });
  } catch (e) {
    say(el.pubResult, `No answer from the hub: ${e.message}`, "error");
    return;
  }
  const okStatus = r.status >= 200 && r.status < 300;
  el.pubResult.dataset.kind = okStatus ? "ok" : "error";
  el.pubResult.replaceChildren(
    h("p", { className: "answer" }, `Hub answered ${r.status} ${r.statusText || ""}`.trim() + (okStatus ? "" : `: ${explain(r)}`)),
    h("pre", { className: "json answer-body" }, r.text ? (r.body ? json(r.body) : r.text) : "(empty body)"),
  );
  if (okStatus && !state.templateDirty) await newTemplate();
}

// ---- wiring ---------------------------------------------------------------------------------------

el.access.addEventListener("submit", (e) => {
  e.preventDefault();
  void openTopic();
});
el.getToken.addEventListener("click", () => void getToken());
el.refresh.addEventListener("click", () => void refresh());
el.newApp.addEventListener("submit", (e) => {
  e.preventDefault();
  void addApp();
});
$("#events-standard").addEventListener("click", () => {
  const std = new Set(state.catalog.events.filter((e) => e.maturity > 0).map((e) => e.name));
  checkEvents((n) => std.has(n));
});
$("#events-all").addEventListener("click", () => checkEvents(() => true));
$("#events-none").addEventListener("click", () => checkEvents(() => false));
el.publish.addEventListener("submit", (e) => {
  e.preventDefault();
  void publish();
});
el.pubEvent.addEventListener("change", () => void newTemplate());
el.appEvents.addEventListener("change", summarizeEvents);
el.pubTemplate.addEventListener("click", () => void newTemplate());
el.pubBody.addEventListener("input", () => (state.templateDirty = true));

fillAnswers(el.appAnswer);
renderEventChoices();
renderPublishChoices();
// The hub's proprietary events (PROPRIETARY_EVENTS) come from its well-known document.
try {
  const r = await request(`${hubUrl}/.well-known/fhircast-configuration`);
  if (r.status === 200 && Array.isArray(r.body?.eventsSupported)) {
    const base = new lib.EventCatalog();
    const proprietary = r.body.eventsSupported.filter((n) => !base.get(n));
    if (proprietary.length) {
      state.catalog = new lib.EventCatalog(proprietary);
      renderEventChoices();
      renderPublishChoices();
    }
  }
} catch {
  // the standard catalog will do
}
await newTemplate({ fresh: false });

// A shared link (?topic=…) opens its topic, as Open topic would (with a development token when needed).
const fromUrl = new URL(location.href).searchParams.get("topic");
document.body.dataset.ready = "true";
if (fromUrl) {
  el.topic.value = fromUrl;
  void openTopic();
} else {
  say(el.accessStatus, "Enter a topic and press Open topic. On a development hub (AUTH_MODE=dev, npm start) it gets a token for you; otherwise paste one into Access token first.");
}
