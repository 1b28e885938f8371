// Anchor and reference parsing (src/fhircast/anchors.ts; fhircast.hl7.org/STU3/2-3-Events.html): the strict form the
// hub validates publishes with and the lenient form the client tracks versions with, in one module.
import { describe, expect, it } from "vitest";
import { anchorOf, referenceId, requiredAnchor, resourceKeyFromUrl } from "../../src/fhircast/anchors";
import { EventCatalog } from "../../src/fhircast/catalog";
import { validatePublish } from "../../src/fhircast/publish";

const catalog = new EventCatalog();
const spec = (name: string) => catalog.get(name)!;
const TOPIC = "t-anchors";

describe("referenceId", () => {
  it.each<[unknown, string, string | undefined]>([
    [{ reference: "Patient/p-1" }, "Patient", "p-1"],
    [{ reference: "https://fhir.example/r4/Patient/p.1/_history/3" }, "Patient", "p.1"],
    [{ reference: "Patient/p-1" }, "Encounter", undefined],
    [{ reference: "Patient/p-1/extra" }, "Patient", undefined],
    [{ reference: `Patient/${"x".repeat(65)}` }, "Patient", undefined],
    [{ reference: 7 }, "Patient", undefined],
    ["Patient/p-1", "Patient", undefined],
    [null, "Patient", undefined],
  ])("%j as a %s → %s", (reference, type, id) => {
    expect(referenceId(reference, type)).toBe(id);
  });

  it("resourceKeyFromUrl reads Type/id from relative and absolute URLs, not from urn:", () => {
    expect(resourceKeyFromUrl("Observation/o1")).toBe("Observation/o1");
    expect(resourceKeyFromUrl("https://x/fhir/Observation/o1/_history/2")).toBe("Observation/o1");
    expect(resourceKeyFromUrl("urn:uuid:0b5b6b5e")).toBeUndefined();
    expect(resourceKeyFromUrl(42)).toBeUndefined();
  });
});

describe("the strict anchor (publishes) and the lenient one (received events)", () => {
  const open = [{ key: "patient", resource: { resourceType: "Patient", id: "p1" } }];
  const update = [{ key: "report", reference: { reference: "DiagnosticReport/r1" } }];

  it("agree on the anchor of events the hub accepts", () => {
    for (const [name, context] of [["Patient-open", open], ["Patient-close", open], ["DiagnosticReport-select", update]] as const) {
      const accepted = validatePublish({ timestamp: "t", id: "i", event: { "hub.topic": TOPIC, "hub.event": name, context } }, catalog);
      expect(accepted.ok && accepted.value.anchor, name).toBe(anchorOf(spec(name), context));
      expect(requiredAnchor(spec(name), context), name).toEqual({ ok: true, value: anchorOf(spec(name), context) });
    }
    expect(anchorOf(spec("Patient-open"), open)).toBe("Patient/p1");
    expect(anchorOf(spec("DiagnosticReport-update"), update)).toBe("DiagnosticReport/r1");
  });

  it("strict: open and close need the resource's id, update and select a reference; 400 required naming the key", () => {
    const blank = [{ key: "patient", resource: { resourceType: "Patient", id: " " } }];
    expect(requiredAnchor(spec("Patient-open"), blank)).toEqual({
      ok: false, status: 400, code: "required",
      detail: `event.context "patient": the Patient resource needs an "id" (the hub pairs close with open by it)`,
    });
    const asResource = [{ key: "report", resource: { resourceType: "DiagnosticReport", id: "r1" } }];
    expect(requiredAnchor(spec("DiagnosticReport-update"), asResource)).toEqual({
      ok: false, status: 400, code: "required", detail: `event.context "report": reference must be "DiagnosticReport/<id>"`,
    });
    expect(requiredAnchor(spec("Home-open"), [])).toEqual({ ok: true, value: undefined });
  });

  it("lenient: whichever form arrived, undefined when there is none", () => {
    expect(anchorOf(spec("DiagnosticReport-update"), [{ key: "report", resource: { resourceType: "DiagnosticReport", id: "r2" } }])).toBe("DiagnosticReport/r2");
    expect(anchorOf(spec("Patient-open"), [{ key: "patient", resource: { id: "" }, reference: { reference: "Patient/p3" } }])).toBe("Patient/p3");
    expect(anchorOf(spec("Patient-open"), [{ key: "encounter", resource: { id: "e1" } }])).toBeUndefined();
    expect(anchorOf(spec("Home-open"), open)).toBeUndefined();
    expect(anchorOf(undefined, open)).toBeUndefined();
  });
});
