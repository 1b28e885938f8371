// Discovery: the well-known configuration document (fhircast.hl7.org/STU3/2-7-Conformance.html).
import { request } from "../http.ts";
import { type Check, assert, brief, fail } from "../types.ts";
import { CONFORMANCE } from "./spec.ts";

function doc(ctx: { wellKnown: Record<string, any> | undefined }): Record<string, any> {
  if (!ctx.wellKnown) fail("the hub serves no JSON well-known configuration (see discovery.well-known-served)");
  return ctx.wellKnown;
}

export const discoveryChecks: Check[] = [
  {
    id: "discovery.well-known-served",
    section: "discovery",
    level: "SHALL",
    title: "GET {hub.url}/.well-known/fhircast-configuration answers 200 with a JSON object",
    requirement: "The Hub SHALL serve a JSON document at hub.url + /.well-known/fhircast-configuration (the suffix is appended even when hub.url has a path).",
    spec: CONFORMANCE,
    async run(ctx) {
      const url = `${ctx.hubUrl}/.well-known/fhircast-configuration`;
      const res = await request(url, { timeoutMs: ctx.shared.opts.timeoutMs });
      assert(res.status === 200, `GET ${url} answered ${res.status} ${brief(res.text)} (without a token)`);
      assert(res.contentType === "application/json", `Content-Type is "${res.headers.get("content-type")}", expected application/json`);
      assert(res.json !== null && typeof res.json === "object" && !Array.isArray(res.json), `the body is not a JSON object: ${brief(res.text)}`);
    },
  },
  {
    id: "discovery.events-supported",
    section: "discovery",
    level: "SHALL",
    title: "eventsSupported is a non-empty array of event names",
    requirement: "eventsSupported (Required): the events the Hub supports, an array of strings.",
    spec: CONFORMANCE,
    async run(ctx) {
      const list = doc(ctx).eventsSupported;
      assert(Array.isArray(list) && list.length > 0, `eventsSupported is ${brief(list)}`);
      const bad = list.filter((e: unknown) => typeof e !== "string" || e === "");
      assert(bad.length === 0, `eventsSupported holds non-strings: ${brief(bad)}`);
      return `${list.length} events`;
    },
  },
  {
    id: "discovery.websocket-support",
    section: "discovery",
    level: "SHALL",
    title: "websocketSupport is true",
    requirement: "websocketSupport (Required): SHALL be the static value true.",
    spec: CONFORMANCE,
    async run(ctx) {
      assert(doc(ctx).websocketSupport === true, `websocketSupport is ${brief(doc(ctx).websocketSupport)}`);
    },
  },
  {
    id: "discovery.fhircast-version",
    section: "discovery",
    level: "SHOULD",
    title: "fhircastVersion names the IG version (3.0.0)",
    requirement: "fhircastVersion SHOULD be present: the version of the FHIRcast IG the Hub implements, e.g. \"3.0.0\".",
    spec: CONFORMANCE,
    async run(ctx) {
      const v = doc(ctx).fhircastVersion;
      assert(typeof v === "string", `fhircastVersion is ${brief(v)}`);
      assert(/^3\.\d+\.\d+/.test(v), `fhircastVersion is "${v}", expected a 3.x.y semantic version (STU3 is "3.0.0")`);
    },
  },
  {
    id: "discovery.capabilities-consistent",
    section: "discovery",
    level: "SHOULD",
    title: "getCurrentSupport and capabilities.supportsGetCurrentContext are both sent and agree",
    requirement: "Implementers should send both getCurrentSupport (deprecated) and capabilities.supportsGetCurrentContext during the transition.",
    spec: CONFORMANCE,
    async run(ctx) {
      const d = doc(ctx);
      const legacy = d.getCurrentSupport;
      const caps = d.capabilities;
      if (legacy === undefined && caps === undefined) return "neither is sent: Get Current Context not advertised";
      assert(typeof legacy === "boolean", `getCurrentSupport is ${brief(legacy)}`);
      assert(caps !== null && typeof caps === "object", `capabilities is ${brief(caps)}`);
      assert(typeof caps.supportsGetCurrentContext === "boolean", `capabilities.supportsGetCurrentContext is ${brief(caps.supportsGetCurrentContext)}`);
      assert(legacy === caps.supportsGetCurrentContext, `getCurrentSupport (${legacy}) and capabilities.supportsGetCurrentContext (${caps.supportsGetCurrentContext}) disagree`);
      if (caps.supportsNonCurrentContextUpdates !== undefined) {
        assert(typeof caps.supportsNonCurrentContextUpdates === "boolean", `capabilities.supportsNonCurrentContextUpdates is ${brief(caps.supportsNonCurrentContextUpdates)}`);
      }
    },
  },
];
