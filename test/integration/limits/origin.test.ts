// The Origin allow-list (issue 5; fhircast.hl7.org/STU3/4-3-security-considerations.html: Origin is a browser filter, never a credential).
// This project runs with ALLOWED_ORIGINS=https://viewer.example.
import { describe, expect, it } from "vitest";
import { hubFetch, patientOpen, publishInit, subscribe, uniqueTopic } from "../../helpers/hub";

describe("ALLOWED_ORIGINS", () => {
  it("refuses browser requests and socket upgrades from other origins (403), allows listed ones", async () => {
    const topic = uniqueTopic("origin");
    const evil = await hubFetch("/api/hub", { ...publishInit(patientOpen(topic)), headers: { "Content-Type": "application/json", Origin: "https://evil.example" } });
    expect(evil.status).toBe(403);
    expect(await evil.text()).toContain("https://evil.example");
    const listed = await hubFetch("/api/hub", { ...publishInit(patientOpen(topic)), headers: { "Content-Type": "application/json", Origin: "https://viewer.example" } });
    expect(listed.status).toBe(202);
    expect(listed.headers.get("Access-Control-Allow-Origin")).toBe("https://viewer.example");
    const endpoint = await subscribe(topic, "Patient-open");
    const upgrade = await hubFetch(endpoint.replace(/^ws/, "http"), { headers: { Upgrade: "websocket", Origin: "https://evil.example" } });
    expect(upgrade.status).toBe(403);
  });

  it("always allows the hub's own origin (its inspector page) and requests without Origin", async () => {
    const topic = uniqueTopic("origin-own");
    const own = await hubFetch("/api/hub", { ...publishInit(patientOpen(topic)), headers: { "Content-Type": "application/json", Origin: "http://hub.test" } });
    expect(own.status).toBe(202);
    const none = await hubFetch("/api/hub", publishInit(patientOpen(topic, "p2")));
    expect(none.status).toBe(202);
  });
});
