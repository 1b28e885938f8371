// Subscribe / unsubscribe parsing (fhircast.hl7.org/STU3/2-4-Subscribing.html): collectParams turns form pairs or
// JSON members into one value per parameter; parseSubscription validates them against the catalog.
import { describe, expect, it } from "vitest";
import { type HubConfig, readConfig } from "../../src/config";
import type { Env } from "../../src/env";
import { EventCatalog } from "../../src/fhircast/catalog";
import { collectParams, MAX_NAME_LENGTH, MAX_TOPIC_LENGTH, parseEvents, parseSubscription } from "../../src/protocol/subscription";

const catalog = new EventCatalog(["org.example.patient_transmogrify"]);
// Built by the hub's own reader so the test follows new settings; only the leases matter here.
const config: HubConfig = readConfig({ HUB_LEASE_DEFAULT_SECONDS: "3600", HUB_LEASE_MAX_SECONDS: "86400", AUTH_MODE: "open" } as Env);
const ENDPOINT = "wss://hub.example.com/ws/0123abcd/s3cr3t";
const failure = (status: number, code: string, detail: string) => ({ ok: false, status, code, detail });

function params(obj: Record<string, string>): Map<string, string> {
  return new Map(Object.entries(obj));
}
const base = { "hub.channel.type": "websocket", "hub.mode": "subscribe", "hub.topic": "topic-1", "hub.events": "Patient-open" };

describe("collectParams", () => {
  it("keeps one value per parameter, from form pairs", () => {
    const r = collectParams(new URLSearchParams("hub.mode=subscribe&hub.topic=t&hub.events=Patient-open,Patient-close").entries());
    expect(r).toEqual({ ok: true, value: new Map([["hub.mode", "subscribe"], ["hub.topic", "t"], ["hub.events", "Patient-open,Patient-close"]]) });
  });

  it("maps the aliases hub.lease (OHIF) and endpoint (older Medplum) to their spec names", () => {
    const r = collectParams([["hub.lease", "600"], ["endpoint", ENDPOINT]]);
    expect(r).toEqual({ ok: true, value: new Map([["hub.lease_seconds", "600"], ["hub.channel.endpoint", ENDPOINT]]) });
  });

  it("refuses a repeated parameter (fhircast.hl7.org/STU3/2-4-Subscribing.html)", () => {
    expect(collectParams([["hub.topic", "a"], ["hub.topic", "b"]])).toEqual(failure(400, "invalid", "parameter hub.topic appears more than once"));
  });

  it("counts an alias and its spec name as the same parameter", () => {
    expect(collectParams([["hub.lease_seconds", "60"], ["hub.lease", "60"]])).toEqual(
      failure(400, "invalid", "parameter hub.lease_seconds appears more than once"));
    expect(collectParams([["endpoint", ENDPOINT], ["hub.channel.endpoint", ENDPOINT]])).toEqual(
      failure(400, "invalid", "parameter hub.channel.endpoint appears more than once"));
  });

  it("trims values: the spec's own unsubscribe example ends the endpoint with %0A", () => {
    const r = collectParams(new URLSearchParams(`hub.channel.endpoint=${encodeURIComponent(ENDPOINT)}%0A&hub.topic=%20t%20`).entries());
    expect(r).toEqual({ ok: true, value: new Map([["hub.channel.endpoint", ENDPOINT], ["hub.topic", "t"]]) });
  });

  it("turns JSON numbers and booleans into strings", () => {
    expect(collectParams([["hub.lease_seconds", 600], ["x", true]])).toEqual({ ok: true, value: new Map([["hub.lease_seconds", "600"], ["x", "true"]]) });
  });

  it("accepts a JSON array of strings for hub.events only", () => {
    expect(collectParams([["hub.events", ["Patient-open", "Patient-close"]]])).toEqual({ ok: true, value: new Map([["hub.events", "Patient-open,Patient-close"]]) });
    expect(collectParams([["hub.events", []]])).toEqual({ ok: true, value: new Map([["hub.events", ""]]) });
    expect(collectParams([["hub.topic", ["a"]]])).toEqual(failure(400, "invalid", "parameter hub.topic must be a string"));
    expect(collectParams([["hub.events", ["Patient-open", 1]]])).toEqual(failure(400, "invalid", "parameter hub.events must be a string"));
  });

  it("refuses null and objects, naming the parameter as sent", () => {
    expect(collectParams([["hub.topic", null]])).toEqual(failure(400, "invalid", "parameter hub.topic must be a string"));
    expect(collectParams([["hub.lease", { n: 1 }]])).toEqual(failure(400, "invalid", "parameter hub.lease must be a string"));
  });
});

describe("parseEvents", () => {
  it("canonicalizes, trims, and de-duplicates case-insensitively in request order", () => {
    expect(parseEvents(" patient-open , Patient-Close,PATIENT-OPEN,,diagnosticreport-update ", catalog)).toEqual({
      ok: true,
      value: ["Patient-open", "Patient-close", "DiagnosticReport-update"],
    });
  });

  it("accepts configured proprietary events", () => {
    expect(parseEvents("org.example.patient_transmogrify", catalog)).toEqual({ ok: true, value: ["org.example.patient_transmogrify"] });
  });

  it.each(["*", "Patient-*", "*-open", "Patient-open,*"])("refuses the wildcard in %s (fhircast.hl7.org/STU3/2-4-Subscribing.html)", (raw) => {
    const name = raw.split(",").find((p) => p.includes("*"))!;
    expect(parseEvents(raw, catalog)).toEqual(failure(400, "not-supported",
      `hub.events: wildcards ("${name}") are not supported by FHIRcast 3.0.0 hubs; list the events`));
  });

  it("refuses an unknown event, naming it", () => {
    expect(parseEvents("Patient-open,heartbeat", catalog)).toEqual(failure(400, "not-supported", `hub.events: "heartbeat" is not an event this hub supports`));
  });

  it("requires at least one event", () => {
    expect(parseEvents(undefined, catalog)).toEqual(failure(400, "required", "hub.events is required and must name at least one event"));
    expect(parseEvents("", catalog)).toEqual(failure(400, "required", "hub.events is required and must name at least one event"));
    expect(parseEvents(" , ,", catalog)).toEqual(failure(400, "required", "hub.events must name at least one event"));
  });
});

describe("parseSubscription: subscribe", () => {
  it("returns the typed request with the default lease", () => {
    expect(parseSubscription(params(base), catalog, config)).toEqual({
      ok: true,
      value: { mode: "subscribe", topic: "topic-1", events: ["Patient-open"], leaseSeconds: 3600, name: undefined, endpoint: undefined },
    });
  });

  it("carries subscriber.name and, for a re-subscribe, the endpoint", () => {
    expect(parseSubscription(params({ ...base, "subscriber.name": "Reporting", "hub.channel.endpoint": ENDPOINT }), catalog, config)).toEqual({
      ok: true,
      value: { mode: "subscribe", topic: "topic-1", events: ["Patient-open"], leaseSeconds: 3600, name: "Reporting", endpoint: ENDPOINT },
    });
  });

  it("takes hub.channel.type case-insensitively", () => {
    expect(parseSubscription(params({ ...base, "hub.channel.type": "WebSocket" }), catalog, config).ok).toBe(true);
  });

  it("refuses a missing or non-websocket channel", () => {
    const { "hub.channel.type": _c, ...noChannel } = base;
    expect(parseSubscription(params(noChannel), catalog, config)).toEqual(failure(400, "required", "hub.channel.type is required (websocket)"));
    expect(parseSubscription(params({ ...base, "hub.channel.type": "rest-hook" }), catalog, config)).toEqual(
      failure(400, "not-supported", `hub.channel.type "rest-hook" is not supported: FHIRcast 3.0.0 hubs use websocket`));
  });

  it("refuses a missing or unknown hub.mode", () => {
    const { "hub.mode": _m, ...noMode } = base;
    expect(parseSubscription(params(noMode), catalog, config)).toEqual(failure(400, "invalid", `hub.mode must be "subscribe" or "unsubscribe"`));
    expect(parseSubscription(params({ ...base, "hub.mode": "Subscribe" }), catalog, config)).toEqual(
      failure(400, "invalid", `hub.mode must be "subscribe" or "unsubscribe", got "Subscribe"`));
  });

  it("refuses a missing or over-long topic", () => {
    const { "hub.topic": _t, ...noTopic } = base;
    expect(parseSubscription(params(noTopic), catalog, config)).toEqual(failure(400, "required", "hub.topic is required"));
    expect(parseSubscription(params({ ...base, "hub.topic": "x".repeat(MAX_TOPIC_LENGTH) }), catalog, config).ok).toBe(true);
    expect(parseSubscription(params({ ...base, "hub.topic": "x".repeat(MAX_TOPIC_LENGTH + 1) }), catalog, config)).toEqual(
      failure(400, "invalid", `hub.topic is longer than ${MAX_TOPIC_LENGTH} characters`));
  });

  it("refuses wildcards and unknown events", () => {
    expect(parseSubscription(params({ ...base, "hub.events": "*" }), catalog, config)).toEqual(
      failure(400, "not-supported", `hub.events: wildcards ("*") are not supported by FHIRcast 3.0.0 hubs; list the events`));
    expect(parseSubscription(params({ ...base, "hub.events": "Patient-open,Foo-open" }), catalog, config)).toEqual(
      failure(400, "not-supported", `hub.events: "Foo-open" is not an event this hub supports`));
  });

  it("takes hub.events from a JSON array (Medplum/OHIF JSON subscribe)", () => {
    const collected = collectParams(Object.entries({ ...base, "hub.events": ["patient-open", "Patient-close", "Patient-open"] }));
    expect(collected.ok).toBe(true);
    const r = parseSubscription((collected as { value: Map<string, string> }).value, catalog, config);
    expect(r.ok && r.value.mode === "subscribe" && r.value.events).toEqual(["Patient-open", "Patient-close"]);
  });

  it("takes hub.lease through collectParams, and a JSON number lease", () => {
    const collected = collectParams(Object.entries({ ...base, "hub.lease": 120 }));
    const r = parseSubscription((collected as { value: Map<string, string> }).value, catalog, config);
    expect(r.ok && r.value.mode === "subscribe" && r.value.leaseSeconds).toBe(120);
  });

  it.each<[string, number]>([
    ["1", 1],
    ["7200", 7200],
    ["86400", 86400],
    ["86401", 86400], //         capped at the hub maximum
    ["9999999999", 86400], //    ten digits, capped
    ["99999999999", 86400], //   eleven digits: still a positive integer, capped (issue 21)
    ["1".repeat(400), 86400], // beyond a double (Number() is Infinity): capped
    ["007200", 7200], //         leading zeros: the same integer
    ["", 3600], //               empty → default
  ])("lease %j → %d", (raw, granted) => {
    const r = parseSubscription(params({ ...base, "hub.lease_seconds": raw }), catalog, config);
    expect(r.ok && r.value.mode === "subscribe" && r.value.leaseSeconds).toBe(granted);
  });

  it.each(["0", "000", "-1", "1.5", "1e3", "abc", "60s", "0x10", "+60"])("refuses the lease %j", (raw) => {
    expect(parseSubscription(params({ ...base, "hub.lease_seconds": raw }), catalog, config)).toEqual(
      failure(400, "invalid", `hub.lease_seconds must be a positive integer, got "${raw}"`));
  });

  it("the default lease never exceeds what the config grants", () => {
    const r = parseSubscription(params(base), catalog, { ...config, leaseDefaultSeconds: 60, leaseMaxSeconds: 60 });
    expect(r.ok && r.value.mode === "subscribe" && r.value.leaseSeconds).toBe(60);
  });

  it("limits subscriber.name and treats an empty one as absent", () => {
    expect(parseSubscription(params({ ...base, "subscriber.name": "n".repeat(MAX_NAME_LENGTH + 1) }), catalog, config)).toEqual(
      failure(400, "invalid", `subscriber.name is longer than ${MAX_NAME_LENGTH} characters`));
    const r = parseSubscription(params({ ...base, "subscriber.name": "" }), catalog, config);
    expect(r.ok && r.value.mode === "subscribe" && r.value.name).toBe(undefined);
  });
});

describe("parseSubscription: unsubscribe (fhircast.hl7.org/STU3/2-4-Subscribing.html)", () => {
  const unsub = { "hub.channel.type": "websocket", "hub.mode": "unsubscribe", "hub.topic": "topic-1" };

  it("needs the endpoint, and nothing about events or lease", () => {
    expect(parseSubscription(params({ ...unsub, "hub.channel.endpoint": ENDPOINT }), catalog, config)).toEqual({
      ok: true,
      value: { mode: "unsubscribe", topic: "topic-1", endpoint: ENDPOINT },
    });
    expect(parseSubscription(params({ ...unsub, "hub.channel.endpoint": ENDPOINT, "hub.events": "*", "hub.lease_seconds": "x" }), catalog, config)).toEqual({
      ok: true,
      value: { mode: "unsubscribe", topic: "topic-1", endpoint: ENDPOINT },
    });
  });

  it("refuses an unsubscribe without an endpoint", () => {
    expect(parseSubscription(params(unsub), catalog, config)).toEqual(failure(400, "required", "hub.channel.endpoint is required to unsubscribe"));
    expect(parseSubscription(params({ ...unsub, "hub.channel.endpoint": "" }), catalog, config)).toEqual(
      failure(400, "required", "hub.channel.endpoint is required to unsubscribe"));
  });

  it("accepts the spec example's trailing %0A and the older endpoint alias, through collectParams", () => {
    const form = `hub.channel.type=websocket&hub.mode=unsubscribe&hub.topic=topic-1&endpoint=${encodeURIComponent(ENDPOINT)}%0A`;
    const collected = collectParams(new URLSearchParams(form).entries());
    expect(parseSubscription((collected as { value: Map<string, string> }).value, catalog, config)).toEqual({
      ok: true,
      value: { mode: "unsubscribe", topic: "topic-1", endpoint: ENDPOINT },
    });
  });
});
