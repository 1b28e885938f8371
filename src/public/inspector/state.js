// @ts-check
// The page's state and its elements, shared by the views.
import { the } from "./dom.js";
import { lib } from "./lib.js";
/** @import { InspectView } from "../../fhircast/wire" */
/** @import { SyncErrorSeen } from "./notifications.js" */
/** @import { SandboxApp } from "./sandbox.js" */

/** @typedef {InspectView["subscribers"][number]} Subscriber */
/**
 * A subscriber this page saw; `ended` once the snapshot no longer lists it.
 * @typedef {{ s: Subscriber, ended: { at: number, reason: string, syncError: SyncErrorSeen | null } | null }} Known
 */

export const origin = location.origin;
export const hubUrl = `${origin}/api/hub`;
export const state = {
  topic: "",
  token: "",
  /** @type {InspectView | null} the last snapshot */
  view: null,
  viewAt: 0,
  /** @type {WebSocket | null} */
  live: null,
  liveWanted: false,
  liveRetry: 0,
  /** @type {Set<number>} the seqs of the events in the stream */
  seen: new Set(),
  /** @type {{ id: string, name: string } | undefined} the last event other than a SyncError, for the SyncError template */
  lastEvent: undefined,
  catalog: new lib.EventCatalog(),
  /** @type {SandboxApp[]} */
  apps: [],
  appCount: 0,
  generation: 0,
  rendered: { contexts: "", subs: "" },
  templateDirty: false,
  /** @type {Map<string, Known>} Every subscriber this page saw on the topic, by id; one the hub no longer lists is kept, ended. */
  known: new Map(),
  /** @type {SyncErrorSeen[]} SyncErrors seen in the stream (subscriber, diagnostics, timestamp), oldest first. */
  syncErrors: [],
  /** @type {{ token: string, topic: string } | null} The token the development issuer gave, and for which topic (a new topic needs a new one). */
  issued: null,
  /** The development issuer answered 404: it is off on this hub (AUTH_MODE is not dev). */
  issuerOff: false,
  /** Since when the hub does not answer (a failed snapshot read), or 0. */
  hubDownSince: 0,
  /** The app the status line under "Connect app" speaks of: the last one connected or in trouble. */
  statusApp: "",
};

export const ANSWERS = [
  { value: "200", label: "200: applied" },
  { value: "409", label: "409: refuse (conflict)" },
  { value: "500", label: "500: failed" },
  { value: "none", label: "no answer at all" },
];

export const el = {
  access: the("#access", HTMLFormElement),
  topic: the("#topic", HTMLInputElement),
  clientId: the("#client-id", HTMLInputElement),
  scopes: the("#scopes", HTMLInputElement),
  token: the("#token", HTMLInputElement),
  getToken: the("#get-token", HTMLButtonElement),
  accessStatus: the("#access-status", HTMLElement),
  inspectedTopic: the("#inspected-topic", HTMLElement),
  liveState: the("#live-state", HTMLElement),
  refresh: the("#refresh", HTMLButtonElement),
  subsBody: the("#subscribers tbody", HTMLTableSectionElement),
  hubDown: the("#hub-down", HTMLElement),
  subsCount: the("#subs-count", HTMLElement),
  contexts: the("#contexts", HTMLOListElement),
  stream: the("#stream", HTMLOListElement),
  streamCount: the("#stream-count", HTMLElement),
  newApp: the("#new-app", HTMLFormElement),
  appName: the("#app-name", HTMLInputElement),
  appAnswer: the("#app-answer", HTMLSelectElement),
  appEvents: the("#app-events", HTMLElement),
  appStatus: the("#app-status", HTMLElement),
  apps: the("#apps", HTMLElement),
  appsCount: the("#apps-count", HTMLElement),
  publish: the("#publish", HTMLFormElement),
  pubEvent: the("#pub-event", HTMLSelectElement),
  pubBody: the("#pub-body", HTMLTextAreaElement),
  pubResult: the("#pub-result", HTMLElement),
  pubTemplate: the("#pub-template", HTMLButtonElement),
};

/**
 * Request headers with the page's token, when there is one.
 * @param {Record<string, string>} [extra]
 * @returns {Record<string, string>}
 */
export function authHeaders(extra = {}) {
  return state.token ? { ...extra, Authorization: `Bearer ${state.token}` } : extra;
}

/** The names of the catalog's events (with the hub's proprietary ones), in catalog order. */
export function eventNames() {
  return state.catalog.events.map((e) => e.name);
}
