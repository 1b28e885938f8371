// @ts-check
// The inspector's live socket (/api/inspect/{topic}/live) and the event stream it feeds.
import { dateTime, h, jsonDetails, time } from "./dom.js";
import { anchorOf, diagnosticsOf, leftOut, syncErrorOf } from "./notifications.js";
import { refreshSoon } from "./snapshot.js";
import { el, origin, state } from "./state.js";
/** @import { InspectView, InspectorFrame, InspectorSeen } from "../../fhircast/wire" */

/**
 * An event as the snapshot lists it and the live socket sends it.
 * @typedef {InspectView["events"][number]} LoggedEvent
 */

const STREAM_LIMIT = 500;

/**
 * Adds an event to the stream (once per seq), newest first.
 * @param {LoggedEvent} logged
 * @param {boolean} live from the live socket (marked fresh), or from a snapshot
 */
export function addStreamEvent({ seq, acceptedAt, event }, live) {
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
  const after = [...el.stream.children].find((x) => Number(/** @type {HTMLElement} */ (x).dataset.seq) < seq);
  el.stream.insertBefore(li, after ?? null);
  while (el.stream.children.length > STREAM_LIMIT) el.stream.lastElementChild?.remove();
  el.streamCount.textContent = `(${state.seen.size})`;
  if (live) li.classList.add("fresh");
}

/**
 * @param {string} text
 * @param {string} kind
 */
function setLiveState(text, kind) {
  el.liveState.textContent = text;
  el.liveState.dataset.kind = kind;
}

/**
 * Opens the live socket for the topic opened as generation `gen` (a later topic stops its retries).
 * @param {number} gen
 */
export function openLive(gen) {
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
    /** @type {InspectorFrame} */
    let f;
    try {
      f = JSON.parse(e.data);
    } catch {
      return;
    }
    if (f.type === "event") {
      // Read: the hub closes a live socket whose event frames go unanswered (SOCKET_BUFFER_BYTES).
      /** @type {InspectorSeen} */
      const seen = { seen: f.seq };
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(seen));
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

export function closeLive() {
  state.liveWanted = false;
  if (state.live) {
    state.live.close(1000, "inspector closed");
    state.live = null;
  }
  setLiveState("not connected", "off");
}
