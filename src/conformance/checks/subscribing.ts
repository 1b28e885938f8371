// Subscribing (fhircast.hl7.org/STU3/2-4-Subscribing.html): the subscription request, the 202 response, the confirmation
// frame, events as a case-insensitive set, re-subscribe, the lease cap, and what real clients send.
import { endpointOf } from "../context.ts";
import { isObject, jwtPayload } from "../http.ts";
import { patientClose, patientOpen, uid } from "../fixtures.ts";
import { type Check, assert, brief, skip } from "../types.ts";
import { EVENTS, SUBSCRIBING } from "./spec.ts";
import { assertRefused, eventList } from "./util.ts";

/** How long the lease check waits between subscribing and connecting. */
const CONNECT_DELAY_MS = 3000;

export const subscribingChecks: Check[] = [
  {
    id: "subscribing.accepted-202",
    section: "subscribing",
    level: "SHALL",
    title: "A form-encoded subscribe is answered 202 with application/json {\"hub.channel.endpoint\"}",
    requirement: "If the subscription is accepted the Hub SHALL respond 202 Accepted with a JSON body holding hub.channel.endpoint; any content returned from subscription requests SHALL be application/json.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const res = await ctx.subscribeRaw(s, { "hub.events": "Patient-open,Patient-close" });
      const endpoint = endpointOf(res, "subscribe");
      assert(res.contentType === "application/json", `Content-Type is "${res.headers.get("content-type")}", expected application/json`);
      let url: URL;
      try {
        url = new URL(endpoint);
      } catch {
        return assert(false, `hub.channel.endpoint is not a URL: ${endpoint}`);
      }
      assert(url.protocol === "wss:" || url.protocol === "ws:", `hub.channel.endpoint is not a WebSocket URL: ${endpoint}`);
    },
  },
  {
    id: "subscribing.endpoint-unique",
    section: "subscribing",
    level: "SHALL",
    title: "Each subscription gets its own, unguessable endpoint",
    requirement: "The WSS URL SHALL be cryptographically random, unique and unguessable.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const a = await ctx.subscribe(s, "Patient-open");
      const b = await ctx.subscribe(s, "Patient-open");
      assert(a !== b, `two subscriptions got the same endpoint ${a}`);
      let start = 0;
      while (start < a.length && a[start] === b[start]) start++;
      let end = 0;
      while (end < a.length - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end++;
      const differing = a.length - start - end;
      // 128 random bits are at least 22 characters in any URL-safe encoding; allow for chance overlaps.
      assert(differing >= 16, `the two endpoints differ in only ${differing} characters (${a} vs ${b}): not enough randomness to be unguessable`);
      assert(!a.includes(s.topic), "the endpoint contains the hub.topic in clear: anyone who knows the topic can guess endpoints");
    },
  },
  {
    id: "subscribing.confirmation",
    section: "subscribing",
    level: "SHALL",
    title: "On connect the hub sends {hub.mode: subscribe, hub.topic, hub.events, hub.lease_seconds}",
    requirement: "When the Subscriber connects to hub.channel.endpoint, the Hub SHALL send a confirmation with hub.mode, hub.topic, hub.events (comma-separated string) and hub.lease_seconds (number).",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const ws = await ctx.connect(await ctx.subscribe(s, "Patient-open,Patient-close"));
      const c = await ws.first(ctx.waitMs);
      assert(c["hub.mode"] === "subscribe", `hub.mode is ${brief(c["hub.mode"])} in ${brief(c)}`);
      assert(c["hub.topic"] === s.topic, `hub.topic is ${brief(c["hub.topic"])}, expected "${s.topic}"`);
      assert(typeof c["hub.events"] === "string", `hub.events is ${brief(c["hub.events"])}, expected a comma-separated string`);
      const granted = eventList(c["hub.events"]);
      assert(granted.includes("patient-open") && granted.includes("patient-close"), `hub.events "${c["hub.events"]}" does not grant Patient-open and Patient-close`);
      assert(typeof c["hub.lease_seconds"] === "number" && c["hub.lease_seconds"] > 0, `hub.lease_seconds is ${brief(c["hub.lease_seconds"])}, expected a positive number`);
    },
  },
  {
    id: "subscribing.events-as-set",
    section: "subscribing",
    level: "SHALL",
    title: "Repeated names in hub.events collapse into one",
    requirement: "hub.events is treated as a set: the Hub SHALL treat duplicates as one.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const ws = await ctx.connect(await ctx.subscribe(s, "Patient-open,Patient-close,Patient-open,patient-OPEN"));
      const c = await ws.first(ctx.waitMs);
      const granted = eventList(c["hub.events"]);
      assert(new Set(granted).size === granted.length, `the confirmation repeats events: "${c["hub.events"]}"`);
      const open = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open);
      await ws.waitEvent(open.id, ctx.waitMs);
      await ctx.sleep(300);
      const copies = ws.notifications.filter((f) => f.id === open.id).length;
      assert(copies === 1, `the event was delivered ${copies} times to one subscription`);
    },
  },
  {
    id: "subscribing.case-insensitive-events",
    section: "subscribing",
    level: "SHALL",
    title: "hub.events in odd casing (patient-OPEN) subscribes to Patient-open",
    requirement: "Hubs and Subscribers SHALL be case insensitive for event-names.",
    spec: EVENTS,
    async run(ctx) {
      const s = await ctx.session();
      const res = await ctx.subscribeRaw(s, { "hub.events": "patient-OPEN,PATIENT-close" });
      const ws = await ctx.connect(endpointOf(res, "subscribe with hub.events=patient-OPEN,PATIENT-close"));
      await ws.first(ctx.waitMs);
      const open = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open);
      const got = await ws.waitEvent(open.id, ctx.waitMs, "Patient-open delivered to a subscription made as patient-OPEN");
      return `delivered as "${got.event["hub.event"]}"`;
    },
  },
  {
    id: "subscribing.json-body",
    section: "subscribing",
    level: "LENIENCY",
    title: "A subscribe sent as a JSON object (Medplum, OHIF) is accepted",
    requirement: "Interoperability: deployed clients send the subscription parameters as an application/json object; the spec defines form encoding.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const res = await ctx.subscribeRaw(s, { "hub.events": "Patient-open,Patient-close" }, { json: true });
      const ws = await ctx.connect(endpointOf(res, "JSON subscribe"));
      const c = await ws.first(ctx.waitMs);
      assert(c["hub.mode"] === "subscribe", `expected a confirmation, got ${brief(c)}`);
    },
  },
  {
    id: "subscribing.client-quirks",
    section: "subscribing",
    level: "LENIENCY",
    title: "OHIF's extras (hub.lease, hub.callback, a first frame with hub.channel.endpoint) do no harm",
    requirement: "Interoperability: OHIF sends hub.lease instead of hub.lease_seconds, hub.callback even for websocket, and {\"hub.channel.endpoint\"} as its first frame.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const res = await ctx.subscribeRaw(s, { "hub.events": "Patient-open", "hub.lease": "3600", "hub.callback": "http://127.0.0.1/ignored", "subscriber.name": "OHIF-like viewer" });
      const endpoint = endpointOf(res, "subscribe with hub.lease and hub.callback");
      const ws = await ctx.connect(endpoint);
      await ws.first(ctx.waitMs);
      ws.send({ "hub.channel.endpoint": endpoint });
      const open = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open);
      await ws.waitEvent(open.id, ctx.waitMs, "Patient-open after the client's extra frame");
    },
  },
  {
    id: "subscribing.refusal-4xx",
    section: "subscribing",
    level: "SHALL",
    title: "An erroneous subscribe (hub.mode=bogus) is refused with 4xx/5xx",
    requirement: "If the subscription is refused or erroneous, a 4xx or 5xx status SHALL be returned.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const res = await ctx.subscribeRaw(s, { "hub.mode": "bogus", "hub.events": "Patient-open" });
      assertRefused(res.status, res.text, "hub.mode=bogus");
      const res2 = await ctx.subscribeRaw(s, { "hub.topic": undefined, "hub.events": "Patient-open" });
      assertRefused(res2.status, res2.text, "subscribe without hub.topic");
    },
  },
  {
    id: "subscribing.refusal-text",
    section: "subscribing",
    level: "SHOULD",
    title: "A refused subscribe carries a description for developers",
    requirement: "The Hub SHOULD put a plain-text description of the error in the response body.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const res = await ctx.subscribeRaw(s, { "hub.mode": "bogus", "hub.events": "Patient-open" });
      assertRefused(res.status, res.text, "hub.mode=bogus");
      assert(res.text.trim().length > 0, `the ${res.status} refusal has an empty body`);
      return `${res.status} ${res.contentType || "(no Content-Type)"}`;
    },
  },
  {
    id: "subscribing.channel-type-required",
    section: "subscribing",
    level: "SHOULD",
    title: "A subscribe without hub.channel.type is refused",
    requirement: "hub.channel.type is Required (websocket); the Hub SHOULD reject a request without it.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const res = await ctx.subscribeRaw(s, { "hub.channel.type": undefined, "hub.events": "Patient-open" });
      assertRefused(res.status, res.text, "subscribe without hub.channel.type");
    },
  },
  {
    id: "subscribing.resubscribe-replaces-events",
    section: "subscribing",
    level: "SHALL",
    title: "Re-subscribing with hub.channel.endpoint replaces the event set of that subscription",
    requirement: "Hubs SHALL allow re-subscribing to an active subscription; a subscribe with the same topic and endpoint but new hub.events SHALL replace the event list.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const { endpoint, ws } = await ctx.subscriber(s, "Patient-open");
      const res = await ctx.subscribeRaw(s, { "hub.events": "Patient-close", "hub.channel.endpoint": endpoint });
      assert(res.status >= 200 && res.status <= 299, `re-subscribe answered ${res.status} ${brief(res.text)}`);
      const returned = isObject(res.json) ? res.json["hub.channel.endpoint"] : undefined;
      const pid = uid("p");
      const open = patientOpen(s.topic, pid);
      const close = patientClose(s.topic, pid);
      await ctx.publishOk(s, open);
      await ctx.publishOk(s, close);
      await ws.waitEvent(close.id, ctx.waitMs, "Patient-close on the existing socket after re-subscribing to Patient-close");
      await ctx.sleep(300);
      assert(!ws.find((f) => f.id === open.id), "Patient-open was still delivered after re-subscribing to Patient-close only");
      if (returned !== undefined && returned !== endpoint) return `the 202 named another endpoint (${returned})`;
    },
  },
  {
    id: "subscribing.lease-remaining-at-confirmation",
    section: "subscribing",
    level: "SHALL",
    title: "Connecting a while after subscribing: the confirmed lease still ends by the token's expiry",
    requirement: "hub.lease_seconds in the confirmation is the lease that remains when it is sent: with OAuth the subscription SHALL NOT outlive the access token, also when the socket connects a while after the subscribe.",
    spec: SUBSCRIBING,
    requires: ["credentials"],
    slow: true,
    async run(ctx) {
      const s = await ctx.session();
      if (s.expiresIn === undefined) skip("the token's lifetime is unknown (no expires_in, not a JWT)");
      // The token's expiry: its JWT `exp` when readable, else the lifetime the token endpoint stated.
      const exp = s.token ? jwtPayload(s.token)?.exp : undefined;
      const tokenEnd = typeof exp === "number" ? exp * 1000 : Date.now() + s.expiresIn * 1000;
      const endpoint = await ctx.subscribe(s, "Patient-open", { "hub.lease_seconds": String(10 * 365 * 86400) });
      await ctx.sleep(CONNECT_DELAY_MS);
      const ws = await ctx.connect(endpoint);
      const confirmation = await ws.first(ctx.waitMs);
      const lease = confirmation["hub.lease_seconds"];
      assert(typeof lease === "number", `hub.lease_seconds is ${brief(lease)}`);
      const left = Math.floor((tokenEnd - ws.frames[0]!.at) / 1000);
      // One second of slack for rounding (the hub may count from a moment before the frame arrived).
      assert(lease <= left + 1, `connected ${CONNECT_DELAY_MS} ms after subscribing with a token that had ${left} s left: the confirmation says ${lease} s`);
      return `confirmed ${lease} s with ${left} s left on the token`;
    },
  },
  {
    id: "subscribing.lease-capped-by-token",
    section: "subscribing",
    level: "SHALL",
    title: "The granted lease does not outlive the access token",
    requirement: "hub.lease_seconds: with OAuth the Hub SHALL cap the lease at the access token's expiry.",
    spec: SUBSCRIBING,
    requires: ["credentials"],
    async run(ctx) {
      const s = await ctx.session();
      if (s.expiresIn === undefined) skip("the token's lifetime is unknown (no expires_in, not a JWT)");
      const { confirmation } = await ctx.subscriber(s, "Patient-open", { "hub.lease_seconds": String(10 * 365 * 86400) });
      const lease = confirmation["hub.lease_seconds"];
      assert(typeof lease === "number", `hub.lease_seconds is ${brief(lease)}`);
      assert(lease <= s.expiresIn + 5, `asked for 10 years with a token valid ${s.expiresIn} s: the hub granted ${lease} s`);
      return `granted ${lease} s (token: ${s.expiresIn} s)`;
    },
  },
];

