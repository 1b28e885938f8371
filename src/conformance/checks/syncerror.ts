// SyncError (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html, fhircast.hl7.org/STU3/3-2-1-SyncError.html), when the hub lists SyncError in eventsSupported.
import type { CheckContext } from "../context.ts";

import { encounterOpen, type Json, notification, patientClose, patientOpen, uid } from "../fixtures.ts";
import { type Check, assert, brief, skip } from "../types.ts";
import type { HubSocket } from "../ws.ts";
import { RECEIVE, SUBSCRIBING, SYNCERROR } from "./spec.ts";
import { isEvent, isTimestamp, sameName, syncErrorInfo } from "./util.ts";

const SUBSCRIBER_NAME = "Conformance Subscriber B";

/** Waits for a SyncError on `ws` about event `eventId`. */
function syncErrorAbout(ctx: CheckContext, ws: HubSocket, eventId: string, timeoutMs = ctx.waitMs, what = `a SyncError about event ${eventId}`) {
  return ws.waitFor((f) => isEvent(f, "SyncError") && syncErrorInfo(f)?.eventId === eventId, timeoutMs, what);
}

/**
 * Watcher A (Patient-open, SyncError), subscriber B (Patient-open, SyncError; acks with `status`) and
 * C (Patient-open only). One Patient-open is published; B refuses or fails it.
 */
async function errorAck(ctx: CheckContext, status: number | string) {
  const s = await ctx.session();
  const a = await ctx.subscriber(s, "Patient-open,SyncError");
  const b = await ctx.subscriber(s, "Patient-open,SyncError", { "subscriber.name": SUBSCRIBER_NAME }, { auto: false });
  const c = await ctx.subscriber(s, "Patient-open");
  const event = patientOpen(s.topic, uid("p"));
  await ctx.publishOk(s, event);
  await b.ws.waitEvent(event.id, ctx.waitMs);
  b.ws.sendAck(event.id, status);
  const se = await syncErrorAbout(ctx, a.ws, event.id, ctx.waitMs, `a SyncError for the other subscribers after an ack with status ${status}`);
  return { s, a, b, c, event, se };
}

function checkProfile(se: Record<string, any>, topic: string, event: Json): string | void {
  assert(isTimestamp(se.timestamp), `SyncError timestamp is ${brief(se.timestamp)}`);
  assert(typeof se.id === "string" && se.id !== "" && se.id !== event.id, `SyncError id is ${brief(se.id)} (must be its own event id)`);
  assert(se.event["hub.topic"] === topic, `SyncError hub.topic is ${brief(se.event["hub.topic"])}`);
  const info = syncErrorInfo(se);
  assert(info, `no context entry "operationoutcome" with an OperationOutcome issue: ${brief(se.event.context)}`);
  assert(info.issue.severity === "warning", `issue.severity is ${brief(info.issue.severity)}, expected "warning"`);
  assert(info.issue.code === "processing", `issue.code is ${brief(info.issue.code)}, expected "processing"`);
  assert(typeof info.issue.diagnostics === "string" && info.issue.diagnostics !== "", `issue.diagnostics is ${brief(info.issue.diagnostics)}`);
  assert(info.codings.length >= 3, `issue.details.coding has ${info.codings.length} codings, expected eventid, eventname and subscribername`);
  assert(info.eventId === event.id, `eventid coding is ${brief(info.eventId)}, expected ${event.id}`);
  assert(sameName(info.eventName, event.event["hub.event"]), `eventname coding is ${brief(info.eventName)}`);
  assert(typeof info.subscriberName === "string" && info.subscriberName !== "", `subscribername coding is ${brief(info.subscriberName)}`);
  const system = info.codings.find((x) => typeof x.system === "string" && x.system.endsWith("/syncerror/subscriber"));
  if (system) return `subscriber coding uses the 3-2-1 example's ".../syncerror/subscriber" system, not the profile's ".../subscribername"`;
  if (info.subscriberName !== SUBSCRIBER_NAME) return `subscribername is "${info.subscriberName}" (subscriber.name was "${SUBSCRIBER_NAME}")`;
}

/** How long a hub may take to find an event unanswered: the spec's 10 s, plus the kit's wait. */
const timeoutWait = (ctx: CheckContext) => 10_000 + ctx.waitMs;

const REPLAY_REQ =
  "The current-context replay SHALL be indistinguishable from live event notifications (2.4), and the Hub SHALL send a SyncError to the other Subscribers for every event notification a Subscriber refuses or fails (2.5).";

const ACK_REQ = "If a Subscriber acknowledges with 409 or another 4xx, or with 500 or another 5xx, the Hub SHALL send a SyncError (refused / not delivered) to the other Subscribers of the topic.";

export const syncErrorChecks: Check[] = [
  {
    id: "syncerror.ack-409",
    section: "syncerror",
    level: "SHALL",
    title: "An ack with status 409 makes the hub send a SyncError to the other subscribers",
    requirement: ACK_REQ,
    spec: RECEIVE,
    requires: ["syncError"],
    async run(ctx) {
      await errorAck(ctx, 409);
    },
  },
  {
    id: "syncerror.ack-4xx",
    section: "syncerror",
    level: "SHALL",
    title: "An ack with another 4xx (\"404\" as a string) makes the hub send a SyncError",
    requirement: ACK_REQ,
    spec: RECEIVE,
    requires: ["syncError"],
    async run(ctx) {
      await errorAck(ctx, "404");
    },
  },
  {
    id: "syncerror.ack-5xx",
    section: "syncerror",
    level: "SHALL",
    title: "An ack with status 500 makes the hub send a SyncError",
    requirement: ACK_REQ,
    spec: RECEIVE,
    requires: ["syncError"],
    async run(ctx) {
      await errorAck(ctx, 500);
    },
  },
  {
    id: "syncerror.profile",
    section: "syncerror",
    level: "SHALL",
    title: "A hub SyncError is an OperationOutcome (warning, processing, diagnostics, eventid/eventname/subscribername codings)",
    requirement: "Hub-generated SyncError: OperationOutcome with issue code processing, severity warning, diagnostics, and details.coding for eventid, eventname and subscribername (fhircast-hub-operation-outcome-syncerror).",
    spec: SYNCERROR,
    requires: ["syncError"],
    async run(ctx) {
      const { s, event, se } = await errorAck(ctx, 409);
      return checkProfile(se, s.topic, event);
    },
  },
  {
    id: "syncerror.only-to-subscribers",
    section: "syncerror",
    level: "SHALL",
    title: "A subscriber that did not subscribe to SyncError does not receive one",
    requirement: "The Hub SHALL NOT send a Subscriber events to which it is not subscribed (SyncError included).",
    spec: RECEIVE,
    requires: ["syncError"],
    async run(ctx) {
      const { c } = await errorAck(ctx, 409);
      await ctx.sleep();
      const got = c.ws.find((f) => isEvent(f, "SyncError"));
      assert(!got, `a Patient-open-only subscriber received ${brief(got)}`);
    },
  },
  {
    id: "syncerror.none-on-normal-close",
    section: "syncerror",
    level: "SHALL",
    title: "A subscriber closing its socket with 1000 causes no SyncError",
    requirement: "The Hub SHALL NOT generate a SyncError when a Subscriber closes the WebSocket with code 1000 or 1001.",
    spec: RECEIVE,
    requires: ["syncError"],
    async run(ctx) {
      const s = await ctx.session();
      const a = await ctx.subscriber(s, "Patient-open,SyncError");
      const b = await ctx.subscriber(s, "Patient-open", { "subscriber.name": SUBSCRIBER_NAME });
      const first = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, first);
      await b.ws.waitEvent(first.id, ctx.waitMs);
      await ctx.sleep(200); // the ack reaches the hub first
      b.ws.close(1000, "done");
      await b.ws.waitClose(ctx.waitMs);
      await ctx.sleep();
      const later = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, later);
      await a.ws.waitEvent(later.id, ctx.waitMs);
      const se = a.ws.find((f) => isEvent(f, "SyncError"));
      assert(!se, `a SyncError followed a close with code 1000: ${brief(se)}`);
    },
  },
  {
    id: "syncerror.relays-subscriber-syncerror",
    section: "syncerror",
    level: "SHALL",
    title: "A SyncError POSTed by a subscriber is distributed to the other SyncError subscribers",
    requirement: "When a Subscriber reports a SyncError (e.g. after a 202 ack), the Hub SHALL distribute a SyncError to the other Subscribers.",
    spec: RECEIVE,
    requires: ["syncError"],
    async run(ctx) {
      const s = await ctx.session();
      const a = await ctx.subscriber(s, "Patient-open,SyncError");
      const failed = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, failed);
      await a.ws.waitEvent(failed.id, ctx.waitMs);
      const base = "https://fhircast.hl7.org/events/syncerror";
      const report = notification(s.topic, "SyncError", [
        {
          key: "operationoutcome",
          resource: {
            resourceType: "OperationOutcome",
            issue: [{
              severity: "warning",
              code: "processing",
              diagnostics: `${SUBSCRIBER_NAME} could not follow the context`,
              details: { coding: [
                { system: `${base}/eventid`, code: failed.id },
                { system: `${base}/eventname`, code: "Patient-open" },
                { system: `${base}/subscribername`, code: SUBSCRIBER_NAME },
              ] },
            }],
          },
        },
      ]);
      await ctx.publishOk(s, report);
      const got = await syncErrorAbout(ctx, a.ws, failed.id, ctx.waitMs, "the subscriber's SyncError, distributed");
      if (got.id !== report.id) return `distributed with a new id (${got.id})`;
    },
  },
  {
    id: "syncerror.unresponsive-unsubscribed",
    section: "syncerror",
    level: "SHALL",
    title: "After a SyncError about a subscriber that never acknowledges, the hub unsubscribes it",
    requirement: "The Hub MAY send a SyncError when a Subscriber does not acknowledge within 10 s; after sending a SyncError about an unresponsive Subscriber, the Hub SHALL unsubscribe it.",
    spec: RECEIVE,
    requires: ["syncError"],
    slow: true,
    async run(ctx) {
      const s = await ctx.session();
      const a = await ctx.subscriber(s, "Patient-open,SyncError");
      const b = await ctx.subscriber(s, "Patient-open", { "subscriber.name": SUBSCRIBER_NAME }, { auto: false });
      const event = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, event);
      await b.ws.waitEvent(event.id, ctx.waitMs);
      const deadline = 10_000 + ctx.waitMs;
      const found = await a.ws.until(() => a.ws.find((f) => isEvent(f, "SyncError") && syncErrorInfo(f)?.eventId === event.id) !== undefined, deadline);
      if (!found) skip(`no SyncError within ${deadline} ms of an unacknowledged event: the hub does not generate timeout SyncErrors (MAY)`);
      const closed = await b.ws.waitClose(ctx.waitMs);
      const denied = b.ws.find((f) => f["hub.mode"] === "denied");
      assert(closed || denied, "the unresponsive subscriber was neither denied nor disconnected after the SyncError about it");
      const probe = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, probe);
      await a.ws.waitEvent(probe.id, ctx.waitMs);
      assert(!b.ws.find((f) => f.id === probe.id), "the unresponsive subscriber still received events");
      return closed ? `${b.ws.describeClose(closed)}${denied ? " after a denial" : ""}` : "denied (socket left open)";
    },
  },
  {
    id: "syncerror.replay-ack-409",
    section: "syncerror",
    level: "SHALL",
    title: "A new subscriber answering the replayed open with 409 makes the hub send a SyncError about it",
    requirement: REPLAY_REQ,
    spec: SUBSCRIBING,
    requires: ["syncError"],
    async run(ctx) {
      const s = await ctx.session();
      const a = await ctx.subscriber(s, "Patient-open,SyncError");
      const open = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open);
      await a.ws.waitEvent(open.id, ctx.waitMs);
      const b = await ctx.subscriber(s, "Patient-open", { "subscriber.name": SUBSCRIBER_NAME }, { auto: true, status: 409 });
      await b.ws.waitEvent(open.id, ctx.waitMs, `the replayed Patient-open (${open.id}) for the new subscriber`);
      const se = await syncErrorAbout(ctx, a.ws, open.id, ctx.waitMs, `a SyncError about the replayed event ${open.id}, which the new subscriber answered with 409`);
      const name = syncErrorInfo(se)?.eventName;
      assert(sameName(name, "Patient-open"), `the SyncError's eventname is ${brief(name)}, expected Patient-open`);
    },
  },
  {
    id: "syncerror.derived-ack-409",
    section: "syncerror",
    level: "SHALL",
    title: "A subscriber answering a derived open with 409 makes the hub send a SyncError naming that derived event",
    requirement: "When the Hub derives events (2.5, experimental: an Encounter-open implies a Patient-open), they are event notifications like any other: a refusal SHALL produce a SyncError to the other Subscribers.",
    spec: RECEIVE,
    requires: ["syncError"],
    async run(ctx) {
      ctx.needEvents("Encounter-open");
      const s = await ctx.session();
      const b = await ctx.subscriber(s, "Patient-open", { "subscriber.name": SUBSCRIBER_NAME }, { auto: true, status: 409 });
      const a = await ctx.subscriber(s, "Encounter-open,SyncError");
      const pid = uid("p");
      const enc = encounterOpen(s.topic, uid("e"), pid);
      await ctx.publishOk(s, enc);
      await a.ws.waitEvent(enc.id, ctx.waitMs);
      const derived = await b.ws.until(() => b.ws.find((f) => isEvent(f, "Patient-open")) !== undefined, ctx.waitMs);
      if (!derived) skip("the hub sent no derived Patient-open for an Encounter-open (derived events are experimental)");
      const d = b.ws.find((f) => isEvent(f, "Patient-open"))!;
      const se = await syncErrorAbout(ctx, a.ws, d.id, ctx.waitMs, `a SyncError about the derived Patient-open ${d.id}, which its subscriber answered with 409`);
      const name = syncErrorInfo(se)?.eventName;
      assert(sameName(name, "Patient-open"), `the SyncError's eventname is ${brief(name)}, expected Patient-open`);
    },
  },
  {
    id: "syncerror.replay-unanswered",
    section: "syncerror",
    level: "SHALL",
    title: "A replayed event left unanswered is treated like a live one (timeout SyncError)",
    requirement: `${REPLAY_REQ} A hub that reports unanswered live events (MAY, after 10 s) reports unanswered replayed ones the same way.`,
    spec: SUBSCRIBING,
    requires: ["syncError"],
    slow: true,
    async run(ctx) {
      const s = await ctx.session();
      const a = await ctx.subscriber(s, "Patient-open,Patient-close,SyncError");
      const pid = uid("p");
      const open = patientOpen(s.topic, pid);
      await ctx.publishOk(s, open);
      await a.ws.waitEvent(open.id, ctx.waitMs);
      const b = await ctx.subscriber(s, "Patient-open,Patient-close", { "subscriber.name": SUBSCRIBER_NAME }, { auto: false });
      await b.ws.waitEvent(open.id, ctx.waitMs, `the replayed Patient-open (${open.id})`);
      // A live event B leaves unanswered too: it tells a hub without timeout SyncErrors (MAY) from one
      // that forgets replayed events.
      const close = patientClose(s.topic, pid);
      await ctx.publishOk(s, close);
      await b.ws.waitEvent(close.id, ctx.waitMs);
      const about = (id: string) => a.ws.find((f) => isEvent(f, "SyncError") && syncErrorInfo(f)?.eventId === id);
      await a.ws.until(() => about(open.id) !== undefined || about(close.id) !== undefined, timeoutWait(ctx));
      if (!about(open.id) && !about(close.id)) skip(`no SyncError within ${timeoutWait(ctx)} ms about unanswered events: the hub does not generate timeout SyncErrors (MAY)`);
      await a.ws.until(() => about(open.id) !== undefined, ctx.waitMs);
      assert(about(open.id), `the hub reported the unanswered live Patient-close (${close.id}) but not the unanswered replayed Patient-open (${open.id})`);
    },
  },
];

