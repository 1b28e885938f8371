// SyncError (src/fhircast/syncerror.ts; fhircast.hl7.org/STU3/3-2-1-SyncError.html): the hub's and the subscriber's
// variants are built by one function, read back by syncErrorDetails, and pass the hub's own validation;
// ackOutcome says what an acknowledgement's status means (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html).
import { describe, expect, it } from "vitest";
import { EventCatalog } from "../../src/fhircast/catalog";
import { validatePublish } from "../../src/fhircast/publish";
import { ackOutcome, SYNCERROR_SYSTEM, syncError, syncErrorContext, syncErrorDetails } from "../../src/fhircast/syncerror";
import type { Notification } from "../../src/fhircast/wire";

const catalog = new EventCatalog();
const TOPIC = "t-syncerror";

describe("SyncError", () => {
  it("the hub's: the profiled OperationOutcome (warning, processing, three codings), read back, and a valid SyncError event", () => {
    const n = syncError(TOPIC, "viewer", { eventId: "e-1", eventName: "Patient-open" }, { kind: "refused", status: 409 }, Date.UTC(2026, 0, 1));
    expect(n.timestamp).toBe("2026-01-01T00:00:00.000Z");
    expect(n.event).toMatchObject({ "hub.topic": TOPIC, "hub.event": "SyncError" });
    const issue = (n.event.context[0]!.resource as { issue: Record<string, unknown>[] }).issue[0]!;
    expect(issue).toMatchObject({ severity: "warning", code: "processing" });
    expect(syncErrorDetails(n)).toEqual({
      failedEventId: "e-1",
      failedEventName: "Patient-open",
      subscriberName: "viewer",
      diagnostics: "viewer refused the event (status 409): Patient-open e-1",
      issueCode: "processing",
    });
    expect(validatePublish(n, catalog).ok).toBe(true);
  });

  it("the subscriber's: the same shape with its own diagnostics and issue code", () => {
    const context = syncErrorContext({ id: "e-2", name: "DiagnosticReport-update" }, "dictation", "cannot apply", "too-long");
    const n: Notification = { timestamp: "t", id: "i", event: { "hub.topic": TOPIC, "hub.event": "SyncError", context } };
    expect(syncErrorDetails(n)).toEqual({
      failedEventId: "e-2",
      failedEventName: "DiagnosticReport-update",
      subscriberName: "dictation",
      diagnostics: "cannot apply",
      issueCode: "too-long",
    });
    const hubs = syncError(TOPIC, "dictation", { eventId: "e-2", eventName: "DiagnosticReport-update" }, { kind: "timeout", seconds: 10 }, 0);
    expect(Object.keys(context[0]!.resource as object)).toEqual(Object.keys(hubs.event.context[0]!.resource as object));
    expect(validatePublish(n, catalog).ok).toBe(true);
  });

  it("reading accepts the spec example's …/subscriber coding and tolerates an outcome without issues", () => {
    const context = [{ key: "operationoutcome", resource: { resourceType: "OperationOutcome", issue: [{ details: { coding: [{ system: `${SYNCERROR_SYSTEM}/subscriber`, code: "old" }] } }] } }];
    expect(syncErrorDetails({ timestamp: "t", id: "i", event: { "hub.topic": TOPIC, "hub.event": "SyncError", context } }).subscriberName).toBe("old");
    expect(syncErrorDetails({ timestamp: "t", id: "i", event: { "hub.topic": TOPIC, "hub.event": "SyncError", context: [] } })).toEqual({});
  });
});

describe("ackOutcome", () => {
  it.each<[unknown, string]>([
    [undefined, "success"],
    [null, "success"],
    [200, "success"],
    ["202", "success"],
    [" 204 ", "success"],
    ["not a number", "success"],
    [409, "refused 409"],
    ["404", "refused 404"],
    [500, "failed 500"],
    [302, "failed 302"],
  ])("status %j → %s", (status, expected) => {
    const o = ackOutcome(status);
    expect(o.success ? "success" : `${o.failure.kind} ${"status" in o.failure ? o.failure.status : ""}`).toBe(expected);
  });
});
