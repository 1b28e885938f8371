// Denial and unsubscribe (fhircast.hl7.org/STU3/2-4-Subscribing.html "Subscription denial", "Unsubscribe").
import { isObject } from "../http.ts";
import { patientOpen, uid } from "../fixtures.ts";
import { type Check, assert, brief } from "../types.ts";
import type { HubSocket } from "../ws.ts";
import { SUBSCRIBING } from "./spec.ts";
import { assertRefused, tamper } from "./util.ts";

const isDenial = (f: Record<string, any>) => f["hub.mode"] === "denied";

/** A hub-closed connection should be done this soon after the close frame. */
const PROMPT_CLOSE_MS = 1000;
/** How long the close check waits for a subscriber that never sent a frame (only reported). */
const SILENT_WAIT_MS = 15_000;

export const unsubscribeChecks: Check[] = [
  {
    id: "unsubscribe.accepted-202",
    section: "unsubscribe",
    level: "SHALL",
    title: "Unsubscribe is answered 202 with {\"hub.channel.endpoint\"}",
    requirement: "If the unsubscribe is accepted the Hub SHALL respond 202 Accepted with a JSON body holding hub.channel.endpoint.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const { endpoint } = await ctx.subscriber(s, "Patient-open");
      const res = await ctx.unsubscribe(s, endpoint);
      assert(res.status === 202, `unsubscribe answered ${res.status} ${brief(res.text)}`);
      assert(res.contentType === "application/json", `Content-Type is "${res.headers.get("content-type")}", expected application/json`);
      const ep = isObject(res.json) ? res.json["hub.channel.endpoint"] : undefined;
      assert(ep === endpoint, `the 202 body is ${brief(res.text)}, expected {"hub.channel.endpoint": "${endpoint}"}`);
    },
  },
  {
    id: "unsubscribe.denial-sent",
    section: "unsubscribe",
    level: "SHALL",
    title: "After unsubscribe the socket receives {hub.mode: denied, hub.topic, hub.events}",
    requirement: "On an accepted unsubscribe the Hub SHALL also send a subscription denial ({hub.mode: \"denied\", hub.topic, hub.events}) over the WebSocket.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const { endpoint, ws } = await ctx.subscriber(s, "Patient-open,Patient-close");
      const res = await ctx.unsubscribe(s, endpoint);
      assert(res.status === 202, `unsubscribe answered ${res.status} ${brief(res.text)}`);
      const d = await ws.waitFor(isDenial, ctx.waitMs, "a denial frame after unsubscribe", 1);
      assert(d["hub.topic"] === s.topic, `denial hub.topic is ${brief(d["hub.topic"])}, expected "${s.topic}"`);
      assert(typeof d["hub.events"] === "string", `denial hub.events is ${brief(d["hub.events"])}, expected a string`);
    },
  },
  {
    id: "unsubscribe.close-completes",
    section: "unsubscribe",
    level: "SHOULD",
    title: "A hub-closed socket finishes closing promptly (close event within 1 s of the close frame)",
    requirement: "The Hub closes the unsubscribed WebSocket; once the closing handshake is done the server closes the connection (RFC 6455 §7.1.1), so the client's close event follows the Hub's close frame within 1 s.",
    spec: SUBSCRIBING,
    slow: true,
    async run(ctx) {
      const s = await ctx.session();
      // A subscriber that received an event and answered it, as every subscriber does, and one that
      // never sent a frame (no event reached it): some runtimes finish the latter's close much later.
      const answering = await ctx.subscriber(s, "Patient-open");
      const silent = await ctx.subscriber(s, "Patient-close");
      const open = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open);
      await answering.ws.waitEvent(open.id, ctx.waitMs);
      await ctx.sleep(200); // its answer reaches the hub
      for (const sub of [answering, silent]) {
        const res = await ctx.unsubscribe(s, sub.endpoint);
        assert(res.status === 202, `unsubscribe answered ${res.status} ${brief(res.text)}`);
      }
      /** Milliseconds from the denial frame (sent just before the close frame) to the close event. */
      const closeDelay = async (ws: HubSocket, waitMs: number): Promise<number | undefined> => {
        await ws.waitFor(isDenial, ctx.waitMs, "a denial frame after unsubscribe", 1);
        await ws.until(() => ws.closedAt !== undefined, waitMs);
        const denial = ws.frames.find((f) => isObject(f.json) && isDenial(f.json))!;
        return ws.closedAt === undefined ? undefined : ws.closedAt - denial.at;
      };
      const answered = await closeDelay(answering.ws, PROMPT_CLOSE_MS + ctx.waitMs);
      assert(answered !== undefined, `the connection of a subscriber that had answered an event had not closed ${PROMPT_CLOSE_MS + ctx.waitMs} ms after the hub's denial (${answering.ws.closedByPeer ? "close frame received, TCP connection still open" : "no close frame"})`);
      assert(answered <= PROMPT_CLOSE_MS, `the close event of a subscriber that had answered an event came ${answered} ms after the hub's denial and close frame`);
      // Reported, not judged: the closing handshake is done, the delay is the server runtime's.
      const quiet = await closeDelay(silent.ws, SILENT_WAIT_MS);
      const other = quiet === undefined ? `not within ${SILENT_WAIT_MS / 1000} s` : `after ${(quiet / 1000).toFixed(1)} s`;
      return `closed ${answered} ms after the denial; a subscriber that had never sent a frame: ${other}`;
    },
  },
  {
    id: "unsubscribe.socket-closed",
    section: "unsubscribe",
    level: "SHOULD",
    title: "After the denial the hub closes the socket",
    requirement: "The unsubscribed WebSocket is destroyed; the sequence diagrams show the Hub closing the connection after the denial.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const { endpoint, ws } = await ctx.subscriber(s, "Patient-open");
      const res = await ctx.unsubscribe(s, endpoint);
      assert(res.status === 202, `unsubscribe answered ${res.status} ${brief(res.text)}`);
      const closed = await ws.waitClose(ctx.waitMs);
      assert(closed, `the socket was still open ${ctx.waitMs} ms after the unsubscribe`);
      return ws.describeClose(closed);
    },
  },
  {
    id: "unsubscribe.endpoint-not-reused",
    section: "unsubscribe",
    level: "SHALL",
    title: "An unsubscribed endpoint cannot be connected again, and is never issued again",
    requirement: "The unsubscribed WebSocket cannot be reused; a new subscription SHALL use a newly created endpoint.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const { endpoint, ws } = await ctx.subscriber(s, "Patient-open");
      assert((await ctx.unsubscribe(s, endpoint)).status === 202, "unsubscribe was not accepted");
      await ws.waitClose(ctx.waitMs);
      const again = ctx.open(endpoint);
      await again.until(() => again.frames.length > 0 || again.closed !== undefined, ctx.waitMs);
      const confirmed = again.find((f) => f["hub.mode"] === "subscribe");
      assert(!confirmed, `reconnecting to the unsubscribed endpoint was confirmed: ${brief(confirmed)}`);
      const next = await ctx.subscribe(s, "Patient-open");
      assert(next !== endpoint, "a new subscription was given the unsubscribed endpoint again");
    },
  },
  {
    id: "unsubscribe.others-unaffected",
    section: "unsubscribe",
    level: "SHALL",
    title: "Unsubscribing one subscription leaves the topic's other subscriptions working",
    requirement: "Each verified (un)subscribe overrides the state for the pair (hub.topic, hub.channel.endpoint) only.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const a = await ctx.subscriber(s, "Patient-open");
      const b = await ctx.subscriber(s, "Patient-open");
      assert((await ctx.unsubscribe(s, a.endpoint)).status === 202, "unsubscribe was not accepted");
      const open = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open);
      await b.ws.waitEvent(open.id, ctx.waitMs, "the event on the subscription that stayed");
    },
  },
  {
    id: "unsubscribe.unknown-endpoint-refused",
    section: "unsubscribe",
    level: "SHALL",
    title: "Unsubscribing an endpoint that was never issued is refused with 4xx/5xx and a description",
    requirement: "If the unsubscribe is refused or erroneous, the Hub SHALL return a 4xx or 5xx status with a plain-text description.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const { endpoint, ws } = await ctx.subscriber(s, "Patient-open");
      const res = await ctx.unsubscribe(s, tamper(endpoint));
      assertRefused(res.status, res.text, "unsubscribe of an endpoint nobody was given");
      assert(res.text.trim().length > 0, `the ${res.status} refusal has an empty body`);
      const open = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open);
      await ws.waitEvent(open.id, ctx.waitMs, "the event on the real subscription (the failed unsubscribe must not touch it)");
    },
  },
  {
    id: "unsubscribe.endpoint-alias",
    section: "unsubscribe",
    level: "LENIENCY",
    title: "Unsubscribe naming the endpoint as `endpoint` (older @medplum/core) works",
    requirement: "Interoperability: older clients send `endpoint` instead of `hub.channel.endpoint` on unsubscribe.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const { endpoint, ws } = await ctx.subscriber(s, "Patient-open");
      const res = await ctx.unsubscribe(s, endpoint, { param: "endpoint" });
      assert(res.status === 202, `unsubscribe with "endpoint" answered ${res.status} ${brief(res.text)}`);
      await ws.waitFor(isDenial, ctx.waitMs, "a denial frame after unsubscribe", 1);
    },
  },
  {
    id: "unsubscribe.unknown-endpoint-denied",
    section: "unsubscribe",
    level: "SHOULD",
    title: "Connecting to an endpoint nobody was given yields a denial frame, never a confirmation",
    requirement: "If (and when) the subscription is denied, the Hub SHALL inform the Subscriber with {hub.mode: \"denied\", hub.topic, hub.events, hub.reason?}.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const endpoint = await ctx.subscribe(s, "Patient-open");
      const ws = ctx.open(tamper(endpoint));
      await ws.until(() => ws.frames.length > 0 || ws.closed !== undefined, ctx.waitMs);
      assert(!ws.find((f) => f["hub.mode"] === "subscribe"), "an endpoint nobody was given was confirmed");
      const d = ws.find(isDenial);
      assert(d, ws.opened ? `no denial frame (${ws.closed ? `closed ${ws.closed.code}` : "still open"})` : "the handshake was refused without a denial frame");
      return d["hub.reason"] ? `reason: ${d["hub.reason"]}` : undefined;
    },
  },
];
