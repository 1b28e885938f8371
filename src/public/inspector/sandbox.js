// @ts-check
// The sandbox's subscriber apps: each a real subscriber built on the project's client
// (/fhircast-client.js, src/client), showing every frame in both directions.
import { eventList, h, jsonDetails, message, say, secondsLeft, sleep, the } from "./dom.js";
import { lib } from "./lib.js";
import { anchorOf } from "./notifications.js";
import { ANSWERS, el, eventNames, hubUrl, state } from "./state.js";
/** @import { Ack, EventBody } from "../../fhircast/wire" */
/** @import { SocketLike } from "../fhircast-client.js" */

/**
 * Fills an "Answer events with" select.
 * @param {HTMLSelectElement} select
 */
export function fillAnswers(select, value = "200") {
  select.replaceChildren(...ANSWERS.map((a) => h("option", { value: a.value, selected: a.value === value }, a.label)));
}

/**
 * The event checkboxes, all or only the checked ones.
 * @param {string} selector
 */
const checkboxes = (selector) => /** @type {NodeListOf<HTMLInputElement>} */ (el.appEvents.querySelectorAll(selector));

export function renderEventChoices() {
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

/**
 * Checks the events `pred` chooses, unchecks the others.
 * @param {(name: string) => boolean} pred
 */
export function checkEvents(pred) {
  for (const c of checkboxes("input[type=checkbox]")) c.checked = pred(c.value);
  summarizeEvents();
}

export function summarizeEvents() {
  const chosen = [...checkboxes("input:checked")].map((c) => c.value);
  the("#events-summary", HTMLElement).textContent = chosen.length <= 3 ? chosen.join(", ") || "none" : `${chosen.length} chosen (${chosen.slice(0, 3).join(", ")}, …)`;
}

/**
 * What a frame on an app's socket carries, as far as its one-line label reads it: from the hub a
 * confirmation or denial (fhircast.hl7.org/STU3/2-4-Subscribing.html) or a notification (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html), to the hub an acknowledgement.
 * @typedef {{ "hub.mode"?: string, "hub.reason"?: string, status?: Ack["status"], event?: Partial<EventBody> }} FrameFields
 */

export class SandboxApp {
  /** @type {number | undefined} when the granted lease ends (ms since the epoch) */
  leaseUntil;
  /** @type {HTMLElement | undefined} */
  leaseEl;
  /** @type {boolean | undefined} the subscription is over */
  isOver;
  /** @type {number | undefined} the client's current re-subscribe attempt */
  retryAttempt;
  /** @type {HTMLElement | undefined} the one note about re-subscribing */
  retryEl;
  /** @type {string | undefined} */
  lastRetryError;

  /**
   * @param {string} name subscriber.name
   * @param {string[]} events
   * @param {string} answer one of ANSWERS' values
   */
  constructor(name, events, answer) {
    this.id = `app-${++state.appCount}`;
    this.name = name;
    this.answer = answer;
    this.frameCount = 0;
    const copy = the("#app-template", HTMLTemplateElement).content.firstElementChild?.cloneNode(true);
    if (!(copy instanceof HTMLElement)) throw new Error("the page's #app-template has no element");
    this.node = copy;
    this.node.id = this.id;
    this.node.dataset.name = name;
    const title = the(".app-title", HTMLElement, this.node);
    title.id = `${this.id}-title`;
    title.textContent = name;
    this.node.setAttribute("aria-labelledby", title.id);
    const select = the(".app-answer-select", HTMLSelectElement, this.node);
    select.id = `${this.id}-answer`;
    the(".answer-label", HTMLLabelElement, this.node).htmlFor = select.id;
    fillAnswers(select, answer);
    select.addEventListener("change", () => {
      this.answer = select.value;
      this.note(`answers from now on: ${ANSWERS.find((a) => a.value === select.value)?.label}`);
    });
    this.frames = the(".frames", HTMLElement, this.node);
    this.frames.setAttribute("aria-labelledby", `${this.id}-frames`);
    the(".frames-title", HTMLElement, this.node).id = `${this.id}-frames`;
    this.stateEl = the(".app-state", HTMLElement, this.node);
    this.granted = the(".app-granted", HTMLElement, this.node);
    this.disconnectBtn = the(".app-disconnect", HTMLButtonElement, this.node);
    this.removeBtn = the(".app-remove", HTMLButtonElement, this.node);
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

  /**
   * The one note about re-subscribing, updated in place while the attempts go on.
   * @param {string} text
   */
  retryNote(text) {
    if (this.retryEl?.isConnected) the(".note-text", HTMLElement, this.retryEl).textContent = text;
    else this.retryEl = this.note(text);
    this.retryEl.dataset.retry = "true";
  }

  renderLease() {
    if (!this.leaseEl) return;
    this.leaseEl.textContent = this.isOver ? "Lease ended." : `Lease left ${secondsLeft(Math.max(0, Math.round((/** @type {number} */ (this.leaseUntil) - Date.now()) / 1000)))}.`;
  }

  /**
   * @param {string} text
   * @param {"ok" | "wait" | "error" | "off"} kind
   */
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
   * @param {string} url
   * @returns {SocketLike}
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
      /** @param {string} data */
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
      // The client types its listeners structurally (SocketLike: `(event: never) => void`); the
      // browser's WebSocket calls them with its own events, which is what the client reads.
      addEventListener: (type, listener) => ws.addEventListener(type, /** @type {EventListener} */ (listener)),
    };
  }

  /**
   * Shows a frame: from the hub ("in"), sent to it ("out"), or an acknowledgement held back ("held").
   * @param {"in" | "out" | "held"} direction
   * @param {string} data
   */
  frame(direction, data) {
    /** @type {unknown} */
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      f = data;
    }
    // Parsed JSON of any shape; a string (not JSON) or a non-object has none of these fields.
    /** @type {FrameFields} */
    const fields = typeof f === "object" && f !== null ? f : {};
    let label;
    let kind = "event";
    if (direction !== "in") {
      label = direction === "held" ? "no acknowledgement sent (this app answers with no answer at all)" : `ack ${fields.status ?? ""}`;
      kind = "ack";
    } else if (fields["hub.mode"] === "subscribe") {
      label = "confirmation";
      kind = "control";
    } else if (fields["hub.mode"] === "denied") {
      label = `denial: ${fields["hub.reason"] ?? ""}`;
      kind = "denial";
    } else if (fields.event?.["hub.event"]) {
      label = `${fields.event["hub.event"]} ${anchorOf(fields)}`;
      kind = fields.event["hub.event"] === "SyncError" ? "syncerror" : "event";
    } else label = typeof f === "string" ? f.slice(0, 80) : "frame";
    const arrow = direction === "in" ? "from hub" : "to hub";
    this.frameCount++;
    const li = h("li", { className: `frame ${kind} ${direction}`, attrs: { "data-kind": kind, "data-direction": direction, "data-event": fields.event?.["hub.event"] ?? "" } },
      h("div", { className: "frame-line" },
        h("span", { className: "dir" }, direction === "held" ? "not sent" : arrow),
        h("span", {}, label),
      ),
      jsonDetails(direction === "held" ? "JSON withheld" : "JSON", f, `of this frame: ${label}`),
    );
    this.frames.prepend(li);
    while (this.frames.children.length > 200) this.frames.lastElementChild?.remove();
    the(".frames-count", HTMLElement, this.node).textContent = `(${this.frameCount})`;
  }

  /**
   * A note in the frames list (not a frame): the socket closed, the answer changed, a retry.
   * @param {string} text
   */
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
      this.setState(`failed: ${message(e)}`, "error");
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
      this.setState(`close failed: ${message(e)}`, "error");
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

/** Connect app: a new app card, subscribed with the chosen events and answer. */
export async function addApp() {
  if (!state.topic) {
    say(el.appStatus, "Open a topic first.", "error");
    el.topic.focus();
    return;
  }
  const name = el.appName.value.trim() || `App ${state.appCount + 1}`;
  const events = [...checkboxes("input:checked")].map((c) => c.value);
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

export async function closeAllApps() {
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
