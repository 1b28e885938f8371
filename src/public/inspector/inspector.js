// @ts-check
// The hub's web inspector and sandbox (docs/inspector.md). Plain browser modules, no framework, no
// build step; typed with JSDoc from the wire types (src/fhircast/wire.ts), checked by `npm run typecheck`.
// This entry wires the views together and starts the page:
//   access.js    the topic and its token; Open topic
//   snapshot.js  GET /api/inspect/{topic}: the subscribers table and the open contexts
//   live.js      the live socket /api/inspect/{topic}/live and the event stream
//   sandbox.js   subscriber apps built on the project's own client (/fhircast-client.js, src/client)
//   publish.js   publishing from catalog templates (templates.js)
// and shared: state.js (state and elements), dom.js, http.js, notifications.js, lib.js (the client bundle).
// Everything the hub sends is shown as text, never as markup.
// The views call one another (Open topic reads the snapshot, the snapshot feeds the stream, the live
// socket asks for snapshots), so their imports are cyclic: ES modules allow that because the views
// only declare functions; at load only lib.js (the bundle), state.js (the page's elements) and this
// entry run code.
import { getToken, openTopic } from "./access.js";
import { say, the } from "./dom.js";
import { request } from "./http.js";
import { lib } from "./lib.js";
import { newTemplate, publish, renderPublishChoices } from "./publish.js";
import { addApp, checkEvents, fillAnswers, renderEventChoices, summarizeEvents } from "./sandbox.js";
import { refresh, renderSubscribers } from "./snapshot.js";
import { el, hubUrl, state } from "./state.js";
/** @import { WellKnown } from "../../fhircast/wire" */

// The lease column and the apps' leases count down between snapshots; a snapshot every 10 s keeps acks and leases true.
setInterval(() => {
  if (state.view) renderSubscribers();
  for (const a of state.apps) a.renderLease();
}, 1000);
setInterval(() => {
  if (state.view && document.visibilityState === "visible") void refresh();
}, 10_000);

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
the("#events-standard", HTMLButtonElement).addEventListener("click", () => {
  const std = new Set(state.catalog.events.filter((e) => e.maturity > 0).map((e) => e.name));
  checkEvents((n) => std.has(n));
});
the("#events-all", HTMLButtonElement).addEventListener("click", () => checkEvents(() => true));
the("#events-none", HTMLButtonElement).addEventListener("click", () => checkEvents(() => false));
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
  const wellKnown = /** @type {Partial<WellKnown> | undefined} */ (r.body);
  if (r.status === 200 && Array.isArray(wellKnown?.eventsSupported)) {
    const base = new lib.EventCatalog();
    const proprietary = wellKnown.eventsSupported.filter((n) => !base.get(n));
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
