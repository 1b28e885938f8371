// @ts-check
// The sandbox's Publish an event: a body from the catalog's templates, sent to the hub as is.
import { h, json, message, say } from "./dom.js";
import { explain, request } from "./http.js";
import { lib } from "./lib.js";
import { refresh } from "./snapshot.js";
import { authHeaders, el, eventNames, hubUrl, state } from "./state.js";
import { template } from "./templates.js";

export function renderPublishChoices() {
  const current = el.pubEvent.value || "Patient-open";
  el.pubEvent.replaceChildren(...eventNames().map((n) => h("option", { value: n, selected: n === current }, n)));
}

/**
 * A new body for the chosen event, from its template.
 * @param {{ fresh?: boolean }} [options] fresh: read the snapshot first (the current versions, for updates)
 */
export async function newTemplate({ fresh = true } = {}) {
  if (fresh && state.topic) await refresh(); // the current versions, for updates
  const body = template(lib, state.catalog, state.topic || "(open a topic)", el.pubEvent.value, state.view, { lastEvent: state.lastEvent });
  el.pubBody.value = json(body);
  state.templateDirty = false;
}

/** Publish: POSTs the body (JSON, as edited) to the hub and shows its answer. */
export async function publish() {
  if (!state.topic) {
    say(el.pubResult, "Open a topic first.", "error");
    return;
  }
  let body;
  try {
    body = JSON.parse(el.pubBody.value);
  } catch (e) {
    say(el.pubResult, `The body is not JSON: ${message(e)}`, "error");
    return;
  }
  el.pubResult.replaceChildren(h("p", {}, "Publishing…"));
  let r;
  try {
    r = await request(hubUrl, { method: "POST", headers: authHeaders({ "Content-Type": "application/json" }), body: JSON.stringify(body) });
  } catch (e) {
    say(el.pubResult, `No answer from the hub: ${message(e)}`, "error");
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
