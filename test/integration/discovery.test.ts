// fhircast.hl7.org/STU3/2-7-Conformance.html: the well-known configuration at {hub.url} and at the origin.
import { describe, expect, it } from "vitest";
import { hubFetch, subscriber, uniqueTopic } from "../helpers/hub";

/** Every event the hub accepts, in canonical spelling, written out here independently of the catalog. */
const EXPECTED_EVENTS = [
  "Patient-open", "Patient-close",
  "Encounter-open", "Encounter-close",
  "ImagingStudy-open", "ImagingStudy-close",
  "DiagnosticReport-open", "DiagnosticReport-close", "DiagnosticReport-update", "DiagnosticReport-select",
  "SyncError", "UserLogout", "UserHibernate", "Home-open",
  "Patient-update", "Patient-select",
  "Encounter-update", "Encounter-select",
  "ImagingStudy-update", "ImagingStudy-select",
];

const PATHS = ["/api/hub/.well-known/fhircast-configuration", "/.well-known/fhircast-configuration"];

describe("well-known configuration (fhircast.hl7.org/STU3/2-7-Conformance.html)", () => {
  for (const path of PATHS) {
    it(`SHALL serve the configuration document at ${path} with exactly the STU3 fields`, async () => {
      const res = await hubFetch(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toEqual({
        eventsSupported: expect.any(Array),
        websocketSupport: true,
        fhircastVersion: "3.0.0",
        fhirVersion: "R4",
        getCurrentSupport: true,
        capabilities: { supportsGetCurrentContext: true, supportsNonCurrentContextUpdates: true },
      });
      expect([...(body.eventsSupported as string[])].sort()).toEqual([...EXPECTED_EVENTS].sort());
    });
  }

  it("serves the same document at {hub.url}/.well-known and at the origin's /.well-known", async () => {
    const [a, b] = await Promise.all(PATHS.map(async (p) => (await hubFetch(p)).json()));
    expect(a).toEqual(b);
  });

  it("eventsSupported lists each event once, in canonical UpperCamel spelling, with no wildcard and no heartbeat", async () => {
    const body = (await (await hubFetch(PATHS[0]!)).json()) as { eventsSupported: string[] };
    const names = body.eventsSupported;
    expect(new Set(names.map((n) => n.toLowerCase())).size).toBe(names.length);
    expect(names.some((n) => n.includes("*"))).toBe(false);
    expect(names.some((n) => n.toLowerCase() === "heartbeat")).toBe(false);
    for (const n of names) expect(EXPECTED_EVENTS).toContain(n);
  });

  it("every event in eventsSupported is accepted by subscribe, and granted in canonical spelling even when requested in lower case", async () => {
    const body = (await (await hubFetch(PATHS[0]!)).json()) as { eventsSupported: string[] };
    const topic = uniqueTopic("wk");
    const { client } = await subscriber(topic, body.eventsSupported.map((n) => n.toLowerCase()).join(","));
    expect(client.frames[0]).toEqual({
      "hub.mode": "subscribe",
      "hub.topic": topic,
      "hub.events": body.eventsSupported.join(","),
      "hub.lease_seconds": 3600,
    });
    client.close();
  });

  it("answers CORS preflight for the well-known document (browser apps discover the hub)", async () => {
    const res = await hubFetch(PATHS[0]!, {
      method: "OPTIONS",
      headers: { Origin: "http://app.example", "Access-Control-Request-Method": "GET" },
    });
    expect(res.status).toBeLessThan(300);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
  });
});
