// Content sharing (fhircast.hl7.org/STU3/2-10-ContentSharing.html), when the hub lists DiagnosticReport-update.
import type { CheckContext, Session } from "../context.ts";
import { isObject } from "../http.ts";
import { type Json, observation, put, reportClose, reportOpen, reportUpdate, uid } from "../fixtures.ts";
import { type Check, assert, brief } from "../types.ts";
import type { HubSocket } from "../ws.ts";
import { CONTENT, GET_CONTEXT } from "./spec.ts";
import { contextResource, is2xx } from "./util.ts";

const EVENTS = "DiagnosticReport-open,DiagnosticReport-update,DiagnosticReport-close";

interface Opened {
  s: Session;
  ws: HubSocket;
  rid: string;
  pid: string;
  versionId: string;
}

/** Subscribes to the report events and opens a report; returns the version the hub assigned. */
async function openReport(ctx: CheckContext): Promise<Opened> {
  const s = await ctx.session();
  const { ws } = await ctx.subscriber(s, EVENTS);
  const rid = uid("r");
  const pid = uid("p");
  const open = reportOpen(s.topic, rid, pid);
  await ctx.publishOk(s, open);
  const delivered = await ws.waitEvent(open.id, ctx.waitMs, "the DiagnosticReport-open");
  const versionId = delivered.event["context.versionId"];
  assert(typeof versionId === "string" && versionId !== "", `the distributed DiagnosticReport-open has context.versionId ${brief(versionId)}`);
  return { s, ws, rid, pid, versionId };
}

/** Publishes an update and waits for its broadcast; fails unless accepted. */
async function update(ctx: CheckContext, o: Opened, versionId: string, entries: Json[]): Promise<{ sent: Json; got: Record<string, any> }> {
  const sent = reportUpdate(o.s.topic, o.rid, o.pid, versionId, entries);
  await ctx.publishOk(o.s, sent);
  const got = await o.ws.waitEvent(sent.id, ctx.waitMs, "the broadcast DiagnosticReport-update");
  return { sent, got };
}

/**
 * Sends an update the hub must refuse; passes when it answers 4xx/5xx, or 2xx without broadcasting
 * it (the asynchronous rejection the spec allows). Returns the status.
 */
async function refusedUpdate(ctx: CheckContext, o: Opened, body: Json, what: string): Promise<number> {
  const res = await ctx.publish(o.s, body);
  if (is2xx(res.status)) {
    await ctx.sleep();
    assert(!o.ws.find((f) => f.id === body.id), `${what} was accepted (${res.status}) and broadcast`);
  }
  return res.status;
}

function contentBundle(c: Record<string, any>): Record<string, any> {
  const entries = Array.isArray(c.context) ? c.context.filter((e: any) => e?.key === "content") : [];
  assert(entries.length === 1, `expected exactly one "content" entry in the current context, found ${entries.length}: ${brief(c)}`);
  const b = entries[0].resource;
  assert(isObject(b) && b.resourceType === "Bundle" && b.type === "collection", `the content is not a collection Bundle: ${brief(b)}`);
  const list = Array.isArray(b.entry) ? b.entry : [];
  assert(list.every((e: any) => e?.request === undefined), `a content Bundle entry has a request: ${brief(list)}`);
  return b;
}

const contentIds = (b: Record<string, any>): string[] =>
  (Array.isArray(b.entry) ? b.entry : []).map((e: any) => `${e?.resource?.resourceType}/${e?.resource?.id}`);

export const contentChecks: Check[] = [
  {
    id: "content-sharing.open-version-id",
    section: "content-sharing",
    level: "SHALL",
    title: "Every distributed *-open carries a context.versionId, unique within the topic",
    requirement: "The Hub SHALL assign a context.versionId to every *-open it processes; the value SHALL be unique within the topic.",
    spec: CONTENT,
    requires: ["contentSharing"],
    async run(ctx) {
      const o = await openReport(ctx);
      const again = reportOpen(o.s.topic, uid("r"), o.pid);
      await ctx.publishOk(o.s, again);
      const v2 = (await o.ws.waitEvent(again.id, ctx.waitMs)).event["context.versionId"];
      assert(typeof v2 === "string" && v2 !== o.versionId, `two opens got versions ${o.versionId} and ${brief(v2)}`);
    },
  },
  {
    id: "content-sharing.update-versions",
    section: "content-sharing",
    level: "SHALL",
    title: "An update on the current version is broadcast with a new context.versionId and context.priorVersionId",
    requirement: "After applying an update the Hub SHALL assign a new context.versionId and distribute the update with context.versionId (new) and context.priorVersionId (the version it was based on), keeping the event id.",
    spec: CONTENT,
    requires: ["contentSharing"],
    async run(ctx) {
      const o = await openReport(ctx);
      const { sent, got } = await update(ctx, o, o.versionId, [put(observation(uid("obs"), o.pid, "a"))]);
      assert(got.id === sent.id, `broadcast id ${got.id}, request id ${sent.id}`);
      const v = got.event["context.versionId"];
      assert(typeof v === "string" && v !== "" && v !== o.versionId, `context.versionId of the broadcast is ${brief(v)} (prior: ${o.versionId})`);
      assert(got.event["context.priorVersionId"] === o.versionId, `context.priorVersionId is ${brief(got.event["context.priorVersionId"])}, expected ${o.versionId}`);
    },
  },
  {
    id: "content-sharing.update-bundle-id",
    section: "content-sharing",
    level: "SHALL",
    title: "The broadcast update carries the request's Bundle id",
    requirement: "The Hub SHALL keep the same Bundle id in the distributed update as in the request.",
    spec: CONTENT,
    requires: ["contentSharing"],
    async run(ctx) {
      const o = await openReport(ctx);
      const { sent, got } = await update(ctx, o, o.versionId, [put(observation(uid("obs"), o.pid, "a"))]);
      const want = contextResource(sent, "updates")?.id;
      const have = contextResource(got, "updates")?.id;
      assert(have === want, `the broadcast Bundle id is ${brief(have)}, the request's is ${want}`);
    },
  },
  {
    id: "content-sharing.stale-version-rejected",
    section: "content-sharing",
    level: "SHALL",
    title: "An update based on a version that is not current is rejected and not applied",
    requirement: "If the update's context.versionId is not the anchor's current version, the Hub SHALL reject the whole request.",
    spec: CONTENT,
    requires: ["contentSharing"],
    async run(ctx) {
      const o = await openReport(ctx);
      const { got } = await update(ctx, o, o.versionId, [put(observation(uid("obs"), o.pid, "a"))]);
      const current = got.event["context.versionId"] as string;
      // Based on the version before the first update: stale.
      const stale = reportUpdate(o.s.topic, o.rid, o.pid, o.versionId, [put(observation(uid("obs"), o.pid, "stale"))]);
      const status = await refusedUpdate(ctx, o, stale, "an update on a stale version");
      // Nothing changed: the current version still works.
      await update(ctx, o, current, [put(observation(uid("obs"), o.pid, "b"))]);
      return `refused with ${status}`;
    },
  },
  {
    id: "content-sharing.stale-version-4xx",
    section: "content-sharing",
    level: "SHOULD",
    title: "The stale update is refused synchronously with a 4xx",
    requirement: "The Hub SHOULD reject a version mismatch with a 4xx (it MAY instead answer 202 and send a SyncError).",
    spec: CONTENT,
    requires: ["contentSharing"],
    async run(ctx) {
      const o = await openReport(ctx);
      const res = await ctx.publish(o.s, reportUpdate(o.s.topic, o.rid, o.pid, `not-${o.versionId}`, [put(observation(uid("obs"), o.pid, "x"))]));
      assert(res.status >= 400 && res.status <= 499, `an update on an unknown version answered ${res.status} ${brief(res.text)}`);
      return `${res.status}`;
    },
  },
  {
    id: "content-sharing.atomic",
    section: "content-sharing",
    level: "SHALL",
    title: "An update with one invalid entry (POST) is rejected whole: nothing of it is applied",
    requirement: "The Hub SHALL apply an update atomically and SHALL reject the entire request if any part fails; POST entries are not allowed.",
    spec: CONTENT,
    requires: ["contentSharing"],
    async run(ctx) {
      const o = await openReport(ctx);
      const good = observation(uid("obs"), o.pid, "partial");
      const body = reportUpdate(o.s.topic, o.rid, o.pid, o.versionId, [
        put(good),
        { fullUrl: "urn:uuid:" + crypto.randomUUID(), request: { method: "POST", url: "Observation" }, resource: observation(uid("obs"), o.pid, "posted") },
      ]);
      const status = await refusedUpdate(ctx, o, body, "an update with a POST entry");
      // The version did not move: an update on it is still accepted.
      await update(ctx, o, o.versionId, [put(observation(uid("obs"), o.pid, "after"))]);
      if (ctx.shared.features.getCurrentContext) {
        const ids = contentIds(contentBundle(await ctx.currentContext(o.s)));
        assert(!ids.includes(`Observation/${good.id}`), `the valid entry of the rejected update was applied: content holds ${ids.join(", ")}`);
      }
      return `refused with ${status}`;
    },
  },
  {
    id: "content-sharing.get-content",
    section: "content-sharing",
    level: "SHALL",
    title: "GET current context holds one collection Bundle with the content; the open's context stays as opened",
    requirement: "With content sharing, GET adds exactly one content Bundle of type collection (no entry.request; empty when there is no content); the context array is returned exactly as supplied in the open.",
    spec: GET_CONTEXT,
    requires: ["contentSharing", "getCurrentContext"],
    async run(ctx) {
      const o = await openReport(ctx);
      const empty = contentBundle(await ctx.currentContext(o.s));
      assert(contentIds(empty).length === 0, `content right after the open is not empty: ${brief(empty)}`);
      const obs = observation(uid("obs"), o.pid, "finding");
      const finalReport = { ...contextResource(reportOpen(o.s.topic, o.rid, o.pid), "report")!, status: "final" };
      const { got } = await update(ctx, o, o.versionId, [put(obs), put(finalReport)]);
      const c = await ctx.currentContext(o.s);
      const ids = contentIds(contentBundle(c));
      assert(ids.includes(`Observation/${obs.id}`), `the content Bundle lacks Observation/${obs.id}: ${ids.join(", ")}`);
      assert(contextResource(c, "report")?.status === "preliminary", `the report in context changed to ${brief(contextResource(c, "report")?.status)}; updates belong in the content Bundle`);
      assert(c["context.versionId"] === got.event["context.versionId"], `GET version ${brief(c["context.versionId"])}, last broadcast ${got.event["context.versionId"]}`);
    },
  },
  {
    id: "content-sharing.close-discards",
    section: "content-sharing",
    level: "SHOULD",
    title: "After a close and re-open of the report, its old content is gone",
    requirement: "On *-close the Hub should discard that anchor's content.",
    spec: CONTENT,
    requires: ["contentSharing", "getCurrentContext"],
    async run(ctx) {
      const o = await openReport(ctx);
      const obs = observation(uid("obs"), o.pid, "old");
      await update(ctx, o, o.versionId, [put(obs)]);
      const close = reportClose(o.s.topic, o.rid, o.pid);
      await ctx.publishOk(o.s, close);
      await o.ws.waitEvent(close.id, ctx.waitMs);
      const reopen = reportOpen(o.s.topic, o.rid, o.pid);
      await ctx.publishOk(o.s, reopen);
      await o.ws.waitEvent(reopen.id, ctx.waitMs);
      const ids = contentIds(contentBundle(await ctx.currentContext(o.s)));
      assert(!ids.includes(`Observation/${obs.id}`), `content from before the close survived: ${ids.join(", ")}`);
    },
  },
];
