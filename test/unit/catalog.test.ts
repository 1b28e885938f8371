// The event catalog (fhircast.hl7.org/STU3/2-3-Events.html): the STU3 events as the event pages define them, case-insensitive
// lookup (fhircast.hl7.org/STU3/2-3-Events.html "names are unique and case-insensitive"), the generic X-update/X-select pair, and the
// proprietary-name rule (fhircast.hl7.org/STU3/2-3-Events.html: reverse-domain notation, SHALL NOT contain "-").
import { describe, expect, it } from "vitest";
import { validatePublish } from "../../src/fhircast/publish";
import {
  ANCHORS,
  EventCatalog,
  type EventSpec,
  GENERIC_CONTENT_EVENTS,
  parseProprietaryEvents,
  PROPRIETARY_NAME,
  STANDARD_EVENTS,
} from "../../src/fhircast/catalog";

const res = (key: string, resourceType: string, min: number, max: number) => ({ key, resourceType, min, max, kind: "resource" });
const ref = (key: string, resourceType: string, min: number, max: number) => ({ key, resourceType, min, max, kind: "reference" });
const drOpenKeys = [
  res("report", "DiagnosticReport", 1, 1),
  res("encounter", "Encounter", 0, 1),
  res("study", "ImagingStudy", 0, Infinity),
  res("patient", "Patient", 1, 1),
];
const studyKeys = [res("study", "ImagingStudy", 1, 1), res("encounter", "Encounter", 0, 1), res("patient", "Patient", 0, 1)];

/** fhircast.hl7.org/STU3/3_Events.html, one row per STU3 event, canonical UpperCamel spelling. */
const STU3: EventSpec[] = [
  { name: "Patient-open", role: "open", anchorType: "Patient", anchorKey: "patient", maturity: 3, keys: [res("patient", "Patient", 1, 1)] } as EventSpec,
  { name: "Patient-close", role: "close", anchorType: "Patient", anchorKey: "patient", maturity: 3, keys: [res("patient", "Patient", 1, 1)] } as EventSpec,
  { name: "Encounter-open", role: "open", anchorType: "Encounter", anchorKey: "encounter", maturity: 2,
    keys: [res("encounter", "Encounter", 1, 1), res("patient", "Patient", 1, 1)] } as EventSpec,
  { name: "Encounter-close", role: "close", anchorType: "Encounter", anchorKey: "encounter", maturity: 2,
    keys: [res("encounter", "Encounter", 1, 1), res("patient", "Patient", 1, 1)] } as EventSpec,
  { name: "ImagingStudy-open", role: "open", anchorType: "ImagingStudy", anchorKey: "study", maturity: 2, keys: studyKeys } as EventSpec,
  { name: "ImagingStudy-close", role: "close", anchorType: "ImagingStudy", anchorKey: "study", maturity: 2, keys: studyKeys } as EventSpec,
  { name: "DiagnosticReport-open", role: "open", anchorType: "DiagnosticReport", anchorKey: "report", maturity: 2, keys: drOpenKeys } as EventSpec,
  { name: "DiagnosticReport-close", role: "close", anchorType: "DiagnosticReport", anchorKey: "report", maturity: 2, keys: drOpenKeys } as EventSpec,
  { name: "DiagnosticReport-update", role: "update", anchorType: "DiagnosticReport", anchorKey: "report", maturity: 2,
    keys: [ref("report", "DiagnosticReport", 1, 1), ref("patient", "Patient", 0, 1), res("updates", "Bundle", 1, 1)] } as EventSpec,
  { name: "DiagnosticReport-select", role: "select", anchorType: "DiagnosticReport", anchorKey: "report", maturity: 2,
    keys: [ref("report", "DiagnosticReport", 1, 1), ref("patient", "Patient", 0, 1), { ...ref("select", "", 0, Infinity), lenientArray: true }] } as EventSpec,
  { name: "SyncError", role: "infrastructure", maturity: 2, keys: [res("operationoutcome", "OperationOutcome", 1, 1)] } as EventSpec,
  { name: "UserLogout", role: "infrastructure", maturity: 1, keys: [res("parameters", "Parameters", 1, 1)] } as EventSpec,
  { name: "UserHibernate", role: "infrastructure", maturity: 1, keys: [res("parameters", "Parameters", 1, 1)] } as EventSpec,
  { name: "Home-open", role: "home", maturity: 1, keys: [] } as EventSpec,
];

describe("STU3 event catalog", () => {
  it("lists exactly the STU3 events, each with its page's keys, cardinality, kind, type and maturity", () => {
    expect(STANDARD_EVENTS).toEqual(STU3);
  });

  it("advertises canonical names: the STU3 events, then the generic update/select pairs", () => {
    expect(new EventCatalog().names()).toEqual([
      ...STU3.map((e) => e.name),
      "Patient-update", "Patient-select",
      "Encounter-update", "Encounter-select",
      "ImagingStudy-update", "ImagingStudy-select",
    ]);
  });

  it("has no heartbeat, Home-close, or logout/hibernate under their STU2 names (fhircast.hl7.org/STU3/3_Events.html 'not defined')", () => {
    const catalog = new EventCatalog();
    for (const name of ["heartbeat", "Home-close", "logout", "hibernate", "userlogout-open"]) {
      expect(catalog.get(name)).toBeUndefined();
    }
  });

  it("offers the legacy heartbeat only when asked (HEARTBEAT_SECONDS > 0): listed, subscribable, never publishable", () => {
    const catalog = new EventCatalog([], { heartbeat: true });
    expect(catalog.names()).toContain("heartbeat");
    expect(catalog.get("HEARTBEAT")?.hubOnly).toBe(true);
    const published = validatePublish({ timestamp: new Date().toISOString(), id: "h1", event: { "hub.topic": "t", "hub.event": "heartbeat", context: [] } }, catalog);
    expect(published).toMatchObject({ ok: false, status: 400, detail: expect.stringContaining("sent by the hub") });
  });

  it("uses the legacy anchor keys study and report (fhircast.hl7.org/STU3/2-3-Events.html)", () => {
    expect(ANCHORS).toEqual([
      { type: "Patient", key: "patient" },
      { type: "Encounter", key: "encounter" },
      { type: "ImagingStudy", key: "study" },
      { type: "DiagnosticReport", key: "report" },
    ]);
  });
});

describe("case-insensitive lookup (fhircast.hl7.org/STU3/2-3-Events.html)", () => {
  const catalog = new EventCatalog();
  it.each([
    ["Patient-open", "Patient-open"],
    ["patient-open", "Patient-open"],
    ["PATIENT-OPEN", "Patient-open"],
    ["diagnosticreport-UPDATE", "DiagnosticReport-update"],
    ["syncerror", "SyncError"],
    ["userLogout", "UserLogout"],
    ["userHibernate", "UserHibernate"],
    ["home-open", "Home-open"],
    ["imagingstudy-select", "ImagingStudy-select"],
  ])("%s → %s", (given, canonical) => {
    expect(catalog.get(given)?.name).toBe(canonical);
  });

  it("does not trim or fuzzy-match", () => {
    expect(catalog.get(" Patient-open")).toBeUndefined();
    expect(catalog.get("Patient_open")).toBeUndefined();
    expect(catalog.get("Patient-opened")).toBeUndefined();
    expect(catalog.get("")).toBeUndefined();
  });

  it("returns the same spec object for every spelling", () => {
    expect(catalog.get("PATIENT-open")).toBe(catalog.get("Patient-open"));
  });
});

describe("generic X-update / X-select (fhircast.hl7.org/STU3/2-3-Events.html grammar), shaped like the DiagnosticReport pair", () => {
  it("defines update and select for every anchor type except DiagnosticReport (which STU3 defines itself)", () => {
    expect(GENERIC_CONTENT_EVENTS).toEqual([
      { name: "Patient-update", role: "update", anchorType: "Patient", anchorKey: "patient", maturity: 0,
        keys: [ref("patient", "Patient", 1, 1), res("updates", "Bundle", 1, 1)] },
      { name: "Patient-select", role: "select", anchorType: "Patient", anchorKey: "patient", maturity: 0,
        keys: [ref("patient", "Patient", 1, 1), { ...ref("select", "", 0, Infinity), lenientArray: true }] },
      { name: "Encounter-update", role: "update", anchorType: "Encounter", anchorKey: "encounter", maturity: 0,
        keys: [ref("encounter", "Encounter", 1, 1), ref("patient", "Patient", 0, 1), res("updates", "Bundle", 1, 1)] },
      { name: "Encounter-select", role: "select", anchorType: "Encounter", anchorKey: "encounter", maturity: 0,
        keys: [ref("encounter", "Encounter", 1, 1), ref("patient", "Patient", 0, 1), { ...ref("select", "", 0, Infinity), lenientArray: true }] },
      { name: "ImagingStudy-update", role: "update", anchorType: "ImagingStudy", anchorKey: "study", maturity: 0,
        keys: [ref("study", "ImagingStudy", 1, 1), ref("patient", "Patient", 0, 1), res("updates", "Bundle", 1, 1)] },
      { name: "ImagingStudy-select", role: "select", anchorType: "ImagingStudy", anchorKey: "study", maturity: 0,
        keys: [ref("study", "ImagingStudy", 1, 1), ref("patient", "Patient", 0, 1), { ...ref("select", "", 0, Infinity), lenientArray: true }] },
    ]);
  });

  it("event names are unique case-insensitively across the whole catalog", () => {
    const names = new EventCatalog(["org.example.patient_transmogrify"]).names().map((n) => n.toLowerCase());
    expect(new Set(names).size).toBe(names.length);
  });
});

describe("proprietary events (fhircast.hl7.org/STU3/2-3-Events.html)", () => {
  it.each([
    "org.example.patient_transmogrify",
    "com.vendor.x",
    "Org.Example.Thing",
    "a.b",
    "org.example2.v2_event",
  ])("accepts the reverse-domain name %s", (name) => {
    expect(PROPRIETARY_NAME.test(name)).toBe(true);
  });

  it.each([
    "org.example.patient-transmogrify", // SHALL NOT contain "-"
    "transmogrify", //                     not reverse-domain
    "Patient-open", //                     the standard grammar
    "org..example",
    ".org.example",
    "org.example.",
    "1org.example",
    "org.exa mple",
    "org/example.x",
  ])("refuses %s", (name) => {
    expect(PROPRIETARY_NAME.test(name)).toBe(false);
  });

  it("catalogs configured names as infrastructure events that accept any context, looked up case-insensitively", () => {
    const catalog = new EventCatalog(["org.example.patient_transmogrify"]);
    expect(catalog.get("ORG.EXAMPLE.PATIENT_TRANSMOGRIFY")).toEqual({
      name: "org.example.patient_transmogrify",
      role: "infrastructure",
      keys: [],
      maturity: 0,
      proprietary: true,
    });
    expect(catalog.names().at(-1)).toBe("org.example.patient_transmogrify");
    expect(new EventCatalog().get("org.example.patient_transmogrify")).toBeUndefined();
  });
});

describe("parseProprietaryEvents (the PROPRIETARY_EVENTS setting)", () => {
  it("is empty when unset or blank", () => {
    expect(parseProprietaryEvents(undefined)).toEqual([]);
    expect(parseProprietaryEvents("")).toEqual([]);
    expect(parseProprietaryEvents("  ,  , ")).toEqual([]);
  });

  it("splits on commas, trims, and drops empty parts", () => {
    expect(parseProprietaryEvents(" org.example.a , com.vendor.b,,")).toEqual(["org.example.a", "com.vendor.b"]);
  });

  it("throws naming the first invalid name", () => {
    expect(() => parseProprietaryEvents("org.example.a, org.example.b-c, nodots")).toThrow(
      new Error(`PROPRIETARY_EVENTS: "org.example.b-c" is not a reverse-domain name without "-"`),
    );
    expect(() => parseProprietaryEvents("nodots")).toThrow(
      new Error(`PROPRIETARY_EVENTS: "nodots" is not a reverse-domain name without "-"`),
    );
  });
});
