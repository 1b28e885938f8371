// Get current context (fhircast.hl7.org/STU3/2-9-GetCurrentContext.html), when the hub advertises it.
import type { CheckContext, Session } from "../context.ts";
import { patient, patientClose, patientOpen, uid } from "../fixtures.ts";
import { type Check, assert, brief } from "../types.ts";
import { GET_CONTEXT } from "./spec.ts";
import { contextResource, deepEqual } from "./util.ts";

/** Asserts GET current context shows Patient `pid` as the current context. */
export async function expectCurrentPatient(ctx: CheckContext, s: Session, pid: string): Promise<Record<string, any>> {
  const c = await ctx.currentContext(s);
  assert(c["context.type"] === "Patient", `context.type is ${brief(c["context.type"])}, expected "Patient" (body: ${brief(c)})`);
  const p = contextResource(c, "patient");
  assert(p?.id === pid, `the current patient is ${brief(p?.id)}, expected ${pid}`);
  return c;
}

/** Asserts GET current context is the empty context. */
export async function expectEmpty(ctx: CheckContext, s: Session, after: string): Promise<void> {
  const c = await ctx.currentContext(s);
  assert(c["context.type"] === "" && Array.isArray(c.context) && c.context.length === 0,
    `after ${after}, expected {"context.type": "", "context": []}, got ${brief(c)}`);
  assert(c["context.versionId"] === undefined || c["context.versionId"] === "" || typeof c["context.versionId"] === "string", `context.versionId is ${brief(c["context.versionId"])}`);
}

export const currentContextChecks: Check[] = [
  {
    id: "current-context.after-open",
    section: "current-context",
    level: "SHALL",
    title: "After a Patient-open, GET {hub.url}/{topic} returns context.type Patient and the open's context",
    requirement: "The response holds context.type (the anchor's resource type) and context, the context array of the most recent open event exactly as supplied.",
    spec: GET_CONTEXT,
    requires: ["getCurrentContext"],
    async run(ctx) {
      const s = await ctx.session();
      const pid = uid("p");
      await ctx.publishOk(s, patientOpen(s.topic, pid));
      const res = await ctx.getContext(s);
      assert(res.status === 200, `GET answered ${res.status} ${brief(res.text)}`);
      assert(res.contentType === "application/json" || res.contentType === "application/fhir+json", `Content-Type is "${res.headers.get("content-type")}"`);
      const c = await expectCurrentPatient(ctx, s, pid);
      const entry = c.context.find((e: any) => e?.key === "patient");
      assert(deepEqual(entry, { key: "patient", resource: patient(pid) }), `the patient entry changed: ${brief(entry)}`);
    },
  },
  {
    id: "current-context.most-recent-open",
    section: "current-context",
    level: "SHALL",
    title: "With two opens, GET returns the most recent one",
    requirement: "The current context is the most recent *-open event.",
    spec: GET_CONTEXT,
    requires: ["getCurrentContext"],
    async run(ctx) {
      const s = await ctx.session();
      const p1 = uid("p");
      const p2 = uid("p");
      await ctx.publishOk(s, patientOpen(s.topic, p1));
      await ctx.publishOk(s, patientOpen(s.topic, p2));
      await expectCurrentPatient(ctx, s, p2);
    },
  },
  {
    id: "current-context.empty-after-close",
    section: "current-context",
    level: "SHALL",
    title: "After the current context closes, GET returns {\"context.type\": \"\", \"context\": []}",
    requirement: "If a context is closed and no other context is opened, the Hub SHALL return the empty context.",
    spec: GET_CONTEXT,
    requires: ["getCurrentContext"],
    async run(ctx) {
      const s = await ctx.session();
      const pid = uid("p");
      await ctx.publishOk(s, patientOpen(s.topic, pid));
      await ctx.publishOk(s, patientClose(s.topic, pid));
      await expectEmpty(ctx, s, "Patient-open then Patient-close");
    },
  },
  {
    id: "current-context.version-id",
    section: "current-context",
    level: "SHALL",
    title: "GET carries context.versionId, the version distributed with the open",
    requirement: "context.versionId (Required): the current version of the context; it changes every time the context changes.",
    spec: GET_CONTEXT,
    requires: ["getCurrentContext", "contentSharing"],
    async run(ctx) {
      const s = await ctx.session();
      const { ws } = await ctx.subscriber(s, "Patient-open");
      const open = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open);
      const delivered = await ws.waitEvent(open.id, ctx.waitMs);
      const c = await ctx.currentContext(s);
      assert(typeof c["context.versionId"] === "string" && c["context.versionId"] !== "", `context.versionId is ${brief(c["context.versionId"])}`);
      const sent = delivered.event["context.versionId"];
      if (sent !== undefined) assert(sent === c["context.versionId"], `GET says version ${c["context.versionId"]}, the distributed open said ${sent}`);
    },
  },
];
