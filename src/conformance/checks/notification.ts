// Notification shape and acknowledgements (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html): the envelope, JSON text frames,
// and acknowledgements in the forms real subscribers send.
import { type CheckContext } from "../context.ts";
import { isObject } from "../http.ts";
import { patientOpen, uid } from "../fixtures.ts";
import { type Check, assert, brief } from "../types.ts";
import { RECEIVE, TRANSPORT } from "./spec.ts";
import { deepEqual, isEvent, isTimestamp } from "./util.ts";

/** How long an ack variant is watched: past the hub's 10 s acknowledgement timeout (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html). */
const ACK_WATCH_MS = 11_500;

/**
 * A subscriber acknowledges with `status` (undefined: no status member). The hub must treat it as
 * success: no SyncError about it and no unsubscribe, even after the 10 s acknowledgement timeout.
 */
async function ackVariant(ctx: CheckContext, status: number | string | undefined): Promise<string | void> {
  const s = await ctx.session();
  const syncErrors = ctx.shared.features.syncError;
  const watcher = await ctx.subscriber(s, syncErrors ? "Patient-open,SyncError" : "Patient-open");
  const acker = await ctx.subscriber(s, "Patient-open", { "subscriber.name": "conformance ack variant" }, { auto: true, status });
  const first = patientOpen(s.topic, uid("p"));
  await ctx.publishOk(s, first);
  await acker.ws.waitEvent(first.id, ctx.waitMs);
  await ctx.sleep(ACK_WATCH_MS);
  const second = patientOpen(s.topic, uid("p"));
  await ctx.publishOk(s, second);
  await acker.ws.waitEvent(second.id, ctx.waitMs, "a later event: the subscriber that acknowledged must still be subscribed");
  const se = watcher.ws.find((f) => isEvent(f, "SyncError"));
  assert(!se, `the hub sent a SyncError after the acknowledgement ${brief(status === undefined ? { id: first.id } : { id: first.id, status })}: ${brief(se)}`);
  if (!syncErrors) return "the hub does not advertise SyncError: checked that the subscriber stays subscribed";
}

export const notificationChecks: Check[] = [
  {
    id: "notification.envelope",
    section: "notification",
    level: "SHALL",
    title: "A notification is {timestamp, id, event: {hub.topic, hub.event, context[]}}",
    requirement: "Event notifications carry timestamp (ISO 8601 UTC), id (unique) and event with hub.topic, hub.event and the context array.",
    spec: RECEIVE,
    async run(ctx) {
      const s = await ctx.session();
      const { ws } = await ctx.subscriber(s, "Patient-open");
      const open = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open);
      const n = await ws.waitEvent(open.id, ctx.waitMs);
      assert(isTimestamp(n.timestamp), `timestamp is ${brief(n.timestamp)}`);
      assert(typeof n.id === "string" && n.id !== "", `id is ${brief(n.id)}`);
      assert(n.event["hub.topic"] === s.topic, `event.hub.topic is ${brief(n.event["hub.topic"])}, expected "${s.topic}"`);
      assert(typeof n.event["hub.event"] === "string" && n.event["hub.event"].toLowerCase() === "patient-open", `event.hub.event is ${brief(n.event["hub.event"])}`);
      assert(Array.isArray(n.event.context), `event.context is ${brief(n.event.context)}`);
      for (const e of n.event.context) assert(isObject(e) && typeof e.key === "string", `context entry without a key: ${brief(e)}`);
    },
  },
  {
    id: "notification.forwarded-unchanged",
    section: "notification",
    level: "SHOULD",
    title: "The broadcast keeps the request's timestamp and context",
    requirement: "timestamp is when the event occurred (resends keep it); the Hub forwards the event, changing only hub-assigned version ids.",
    spec: RECEIVE,
    async run(ctx) {
      const s = await ctx.session();
      const { ws } = await ctx.subscriber(s, "Patient-open");
      const open = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open);
      const n = await ws.waitEvent(open.id, ctx.waitMs);
      assert(n.timestamp === open.timestamp, `timestamp ${brief(n.timestamp)}, sent ${open.timestamp}`);
      assert(deepEqual(n.event.context, open.event.context), `context changed: sent ${brief(open.event.context)}, received ${brief(n.event.context)}`);
    },
  },
  {
    id: "notification.json-text-frames",
    section: "notification",
    level: "SHALL",
    title: "Every frame the hub sends (confirmation, event, denial) is a JSON text frame",
    requirement: "All data sent over WebSockets SHALL be JSON (RFC 6455 text frames).",
    spec: TRANSPORT,
    async run(ctx) {
      const s = await ctx.session();
      const { endpoint, ws } = await ctx.subscriber(s, "Patient-open");
      const open = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open);
      await ws.waitEvent(open.id, ctx.waitMs);
      await ctx.unsubscribe(s, endpoint);
      await ws.waitClose(ctx.waitMs);
      const bad = ws.frames.filter((f) => f.binary || !isObject(f.json));
      assert(bad.length === 0, `frames that are not JSON objects in text frames: ${brief(bad.map((f) => f.raw))}`);
      return `${ws.frames.length} frames`;
    },
  },
  {
    id: "notification.ack-string-status",
    section: "notification",
    level: "LENIENCY",
    title: "An ack {id, status: \"200\"} (string, as in the spec's example) counts as success",
    requirement: "Interoperability: the acknowledgement's status is declared numeric, but the spec's own example sends the string \"200\".",
    spec: RECEIVE,
    slow: true,
    run: (ctx) => ackVariant(ctx, "200"),
  },
  {
    id: "notification.ack-number-status",
    section: "notification",
    level: "LENIENCY",
    title: "An ack {id, status: 200} (number) counts as success",
    requirement: "The Subscriber SHALL answer every notification with {id, status}; any 2xx status indicates success.",
    spec: RECEIVE,
    slow: true,
    run: (ctx) => ackVariant(ctx, 200),
  },
  {
    id: "notification.ack-missing-status",
    section: "notification",
    level: "LENIENCY",
    title: "An ack {id} without status (@medplum/core) is not treated as a failure",
    requirement: "Interoperability: @medplum/core's FhircastConnection acknowledges with {id, timestamp} and no status.",
    spec: RECEIVE,
    slow: true,
    run: (ctx) => ackVariant(ctx, undefined),
  },
];
