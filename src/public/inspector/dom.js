// @ts-check
// DOM and text helpers of the inspector page, shared by every view. Everything the hub sends is
// shown as text (textContent, text nodes), never as markup.

/**
 * The element `sel` finds (in the page, or under `root`), of the type the script expects of the
 * markup; a page and script that disagree fail here, naming the selector.
 * @template {Element} T
 * @param {string} sel
 * @param {{ new (): T }} type e.g. HTMLInputElement
 * @param {ParentNode} [root]
 * @returns {T}
 */
export function the(sel, type, root = document) {
  const found = root.querySelector(sel);
  if (!(found instanceof type)) throw new Error(`the page has no ${type.name} at ${sel}`);
  return found;
}

/** @typedef {string | Node | null | undefined | false} Child */

/**
 * Creates an element with properties, attributes (`attrs`) and children (strings become text).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Partial<HTMLElementTagNameMap[K]> & { attrs?: Record<string, string> }} [props]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  const { attrs, ...rest } = props;
  Object.assign(el, rest);
  for (const [k, v] of Object.entries(attrs ?? {})) el.setAttribute(k, v);
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c);
  return el;
}

/** @param {unknown} v */
export const json = (v) => JSON.stringify(v, null, 2);
/** @param {number} n @param {number} [w] */
const pad = (n, w = 2) => String(n).padStart(w, "0");
/**
 * Local time of day with milliseconds (24 h), e.g. 09:56:40.078.
 * @param {string | number | undefined} iso an ISO timestamp, or milliseconds since the epoch
 */
export const time = (iso) => {
  const d = new Date(/** @type {string | number} */ (iso));
  return Number.isNaN(d.getTime()) ? String(iso) : `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
};
/**
 * Local date and time, e.g. 2026-11-30 09:56:40.078: an event's own timestamp may be from any day.
 * @param {string | undefined} iso
 */
export const dateTime = (iso) => {
  const d = new Date(/** @type {string} */ (iso));
  return Number.isNaN(d.getTime()) ? String(iso) : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time(iso)}`;
};
/**
 * Seconds left as "59 min 49 s" (or "2 h 5 min").
 * @param {number} left
 */
export function secondsLeft(left) {
  const m = Math.floor(left / 60);
  return m >= 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : `${m} min ${pad(left % 60)} s`;
}

/**
 * A <details> with a summary and the JSON, rendered only when opened (large contents stay cheap).
 * @param {string} label
 * @param {unknown} value
 * @param {string} [spoken] more of the summary for screen readers
 */
export function jsonDetails(label, value, spoken = "") {
  const pre = h("pre", { className: "json", tabIndex: 0 });
  const summary = h("summary", {}, label, spoken ? h("span", { className: "visually-hidden" }, ` ${spoken}`) : null);
  const d = h("details", { className: "json-details" }, summary, pre);
  d.addEventListener("toggle", () => {
    if (d.open && !pre.textContent) pre.textContent = json(value);
  });
  return d;
}

/**
 * A list of event names: short ones in full, long ones as a count that opens to the list.
 * @param {readonly string[]} events
 */
export function eventList(events) {
  if (events.length <= 3) return events.join(", ");
  return h("details", { className: "event-list" }, h("summary", {}, `${events.length} events`), h("span", {}, events.join(", ")));
}

/**
 * A status line's text and kind (info, ok, error: the stylesheet colours it).
 * @param {HTMLElement} target
 * @param {string} text
 */
export function say(target, text, kind = "info") {
  target.textContent = text;
  target.dataset.kind = kind;
}

/**
 * What went wrong, in words: a thrown Error's message (fetch and WebSocket failures are Errors).
 * @param {unknown} e
 */
export const message = (e) => (e instanceof Error ? e.message : String(e));

/** @param {number} ms */
export const sleep = (ms) => /** @type {Promise<void>} */ (new Promise((r) => setTimeout(r, ms)));
