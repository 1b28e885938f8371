// @ts-check
// Access: the topic and its token (from the development issuer, or pasted), and opening a topic.
import { message, say } from "./dom.js";
import { explain, request } from "./http.js";
import { closeLive, openLive } from "./live.js";
import { newTemplate } from "./publish.js";
import { closeAllApps } from "./sandbox.js";
import { refresh } from "./snapshot.js";
import { el, origin, state } from "./state.js";

/**
 * The development issuer's token response (RFC 6749 §5.1), as far as the page reads it.
 * @typedef {{ access_token?: string, scope?: string, expires_in?: number }} TokenResponse
 */

/** Get token: a new token from the development issuer, then the topic opens with it. */
export async function getToken() {
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
 * @param {string} topic
 * @returns {Promise<"ok" | "off" | "failed">}
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
    const body = /** @type {TokenResponse | undefined} */ (r.body);
    if (r.status !== 200 || !body?.access_token) {
      say(el.accessStatus, `The issuer refused (${r.status}): ${explain(r)}`, "error");
      return "failed";
    }
    el.token.value = body.access_token;
    state.issued = { token: body.access_token, topic };
    say(el.accessStatus, `Token for client ${el.clientId.value.trim()} on this topic, scopes "${body.scope}", valid ${body.expires_in} s.`, "ok");
    return "ok";
  } catch (e) {
    say(el.accessStatus, `Could not reach the issuer: ${message(e)}`, "error");
    return "failed";
  }
}

export const ISSUER_OFF =
  "This hub's development issuer is off (AUTH_MODE is not dev). Paste a token from your authorization server with the scope fhircast-hub/inspect into Access token, or leave it empty if the hub runs AUTH_MODE=open.";

/**
 * Open topic, the first step: without a token (or with one the development issuer gave for another
 * topic) it first asks the development issuer for one, so on `npm start` one click opens the topic.
 * Where the issuer is off it goes on without a token (AUTH_MODE=open needs none) and a refusal says
 * what to paste.
 */
export async function openTopic() {
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
