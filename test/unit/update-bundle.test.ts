// parseUpdateBundle (fhircast.hl7.org/STU3/2-10-ContentSharing.html, spec note A17): the `updates` transaction Bundle as PUT/DELETE operations,
// with every stateless refusal rejecting the whole Bundle.
import { describe, expect, it } from "vitest";
import { resourceKeyFromUrl } from "../../src/fhircast/anchors";
import { MAX_UPDATE_ENTRIES, parseUpdateBundle } from "../../src/fhircast/update-bundle";

const failure = (status: number, code: string, detail: string) => ({ ok: false, status, code, detail });
const bundle = (entry: unknown[], extra: Record<string, unknown> = {}) => ({ resourceType: "Bundle", id: "b1", type: "transaction", entry, ...extra });
const observation = (id: string) => ({ resourceType: "Observation", id, status: "preliminary", code: { text: "finding" } });
const put = (resource: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ request: { method: "PUT" }, resource, ...extra });

describe("resourceKeyFromUrl", () => {
  it.each<[unknown, string | undefined]>([
    ["Observation/40afe766", "Observation/40afe766"],
    ["Observation/40afe766/_history/2", "Observation/40afe766"],
    ["https://fhir.example.org/r4/Observation/40afe766", "Observation/40afe766"],
    ["http://example.com/huburl/topic/fhir", undefined], // the FSH example's request.url: no Type/id
    ["urn:uuid:40afe766-3628-4ded-b5bd-925727c013b3", undefined],
    ["urn:Observation/40afe766", undefined],
    ["observation/40afe766", undefined],
    ["Observation/", undefined],
    ["Observation/a b", undefined],
    ["", undefined],
    [42, undefined],
    [undefined, undefined],
  ])("%j → %j", (url, key) => {
    expect(resourceKeyFromUrl(url)).toBe(key);
  });
});

describe("PUT", () => {
  it("adds or replaces the resource named by its own resourceType/id; fullUrl kept when given", () => {
    expect(parseUpdateBundle(bundle([
      put(observation("o1")),
      put(observation("o2"), { fullUrl: "Observation/o2" }),
      put({ resourceType: "DiagnosticReport", id: "r1", status: "final" }, { fullUrl: "urn:uuid:0a0b" }),
    ]))).toEqual({
      ok: true,
      value: [
        { method: "PUT", key: "Observation/o1", resource: observation("o1") },
        { method: "PUT", key: "Observation/o2", fullUrl: "Observation/o2", resource: observation("o2") },
        { method: "PUT", key: "DiagnosticReport/r1", fullUrl: "urn:uuid:0a0b", resource: { resourceType: "DiagnosticReport", id: "r1", status: "final" } },
      ],
    });
  });

  it("accepts the method in any case", () => {
    expect(parseUpdateBundle(bundle([{ request: { method: "put" }, resource: observation("o1") }]))).toEqual({
      ok: true,
      value: [{ method: "PUT", key: "Observation/o1", resource: observation("o1") }],
    });
  });

  it.each<[string, unknown]>([
    ["no resource", undefined],
    ["no id", { resourceType: "Observation" }],
    ["an empty id", { resourceType: "Observation", id: "" }],
    ["a numeric id", { resourceType: "Observation", id: 5 }],
    ["no resourceType", { id: "o1" }],
  ])("refuses a PUT with %s", (_label, resource) => {
    expect(parseUpdateBundle(bundle([{ request: { method: "PUT" }, resource }]))).toEqual(
      failure(400, "invalid", "updates.entry[0]: a PUT needs a resource with resourceType and id"));
  });

  it("refuses a resourceType/id that is not valid FHIR", () => {
    expect(parseUpdateBundle(bundle([put({ resourceType: "observation", id: "o1" })]))).toEqual(
      failure(400, "invalid", `updates.entry[0]: "observation/o1" is not a valid resourceType/id`));
    expect(parseUpdateBundle(bundle([put({ resourceType: "Observation", id: "o/1" })]))).toEqual(
      failure(400, "invalid", `updates.entry[0]: "Observation/o/1" is not a valid resourceType/id`));
    expect(parseUpdateBundle(bundle([put({ resourceType: "Observation", id: "x".repeat(65) })]))).toEqual(
      failure(400, "invalid", `updates.entry[0]: "Observation/${"x".repeat(65)}" is not a valid resourceType/id`));
  });
});

describe("DELETE", () => {
  it("takes the target from a relative fullUrl (the spec example form, no request.url)", () => {
    expect(parseUpdateBundle(bundle([{ fullUrl: "Observation/40afe766", request: { method: "DELETE" } }]))).toEqual({
      ok: true,
      value: [{ method: "DELETE", key: "Observation/40afe766" }],
    });
  });

  it("takes the target from an absolute fullUrl", () => {
    expect(parseUpdateBundle(bundle([{ fullUrl: "https://fhir.example.org/Observation/40afe766", request: { method: "DELETE" } }]))).toEqual({
      ok: true,
      value: [{ method: "DELETE", key: "Observation/40afe766" }],
    });
  });

  it("prefers request.url over fullUrl (relative and absolute)", () => {
    expect(parseUpdateBundle(bundle([{ fullUrl: "Observation/from-full-url", request: { method: "DELETE", url: "Observation/from-request" } }]))).toEqual({
      ok: true,
      value: [{ method: "DELETE", key: "Observation/from-request" }],
    });
    expect(parseUpdateBundle(bundle([{ fullUrl: "Observation/from-full-url", request: { method: "DELETE", url: "https://fhir.example.org/Observation/abs" } }]))).toEqual({
      ok: true,
      value: [{ method: "DELETE", key: "Observation/abs" }],
    });
  });

  it("falls back to fullUrl when request.url names no Type/id (spec note A17's example request.url)", () => {
    expect(parseUpdateBundle(bundle([{ fullUrl: "Observation/o1", request: { method: "DELETE", url: "http://example.com/huburl/topic/fhir" } }]))).toEqual({
      ok: true,
      value: [{ method: "DELETE", key: "Observation/o1" }],
    });
  });

  it("refuses urn: targets, which name no resource in the content", () => {
    expect(parseUpdateBundle(bundle([{ fullUrl: "urn:uuid:40afe766-3628-4ded-b5bd-925727c013b3", request: { method: "DELETE" } }]))).toEqual(
      failure(400, "invalid", `updates.entry[0]: a DELETE needs request.url or fullUrl of the form "Type/id"`));
    expect(parseUpdateBundle(bundle([{ request: { method: "DELETE", url: "urn:uuid:40afe766" } }]))).toEqual(
      failure(400, "invalid", `updates.entry[0]: a DELETE needs request.url or fullUrl of the form "Type/id"`));
  });

  it("refuses a DELETE without any target", () => {
    expect(parseUpdateBundle(bundle([{ request: { method: "DELETE" } }]))).toEqual(
      failure(400, "invalid", `updates.entry[0]: a DELETE needs request.url or fullUrl of the form "Type/id"`));
  });

  it("refuses a DELETE that carries a resource (resource 0..0)", () => {
    expect(parseUpdateBundle(bundle([{ fullUrl: "Observation/o1", request: { method: "DELETE" }, resource: observation("o1") }]))).toEqual(
      failure(400, "invalid", "updates.entry[0]: a DELETE carries no resource"));
  });
});

describe("refusals of the whole Bundle", () => {
  it("POST → 422: the content model cannot assign ids", () => {
    expect(parseUpdateBundle(bundle([put(observation("o1")), { request: { method: "POST" }, resource: { resourceType: "Observation" } }]))).toEqual(
      failure(422, "not-supported", "updates.entry[1]: POST is not allowed in content updates (the content model cannot assign ids); use PUT with an id"));
  });

  it.each([["PATCH"], ["GET"], [""], [undefined]])("method %j → 400", (method) => {
    expect(parseUpdateBundle(bundle([{ request: method === undefined ? {} : { method }, resource: observation("o1") }]))).toEqual(
      failure(400, "invalid", "updates.entry[0]: request.method must be PUT or DELETE"));
  });

  it("an entry without request → 400", () => {
    expect(parseUpdateBundle(bundle([{ resource: observation("o1") }]))).toEqual(
      failure(400, "invalid", "updates.entry[0]: request.method must be PUT or DELETE"));
  });

  it("an entry that is not an object → 400", () => {
    expect(parseUpdateBundle(bundle([put(observation("o1")), "Observation/o2"]))).toEqual(failure(400, "invalid", "updates.entry[1] must be an object"));
  });

  it("the same resource twice → 400 (SHALL NOT appear more than once), whatever the methods", () => {
    expect(parseUpdateBundle(bundle([put(observation("o1")), put(observation("o1"))]))).toEqual(
      failure(400, "invalid", "updates.entry[1]: Observation/o1 appears more than once in the Bundle"));
    expect(parseUpdateBundle(bundle([put(observation("o1")), { fullUrl: "https://x.org/Observation/o1", request: { method: "DELETE" } }]))).toEqual(
      failure(400, "invalid", "updates.entry[1]: Observation/o1 appears more than once in the Bundle"));
    expect(parseUpdateBundle(bundle([{ fullUrl: "Observation/o1", request: { method: "DELETE" } }, { request: { method: "DELETE", url: "Observation/o1" } }]))).toEqual(
      failure(400, "invalid", "updates.entry[1]: Observation/o1 appears more than once in the Bundle"));
  });

  it("the same id under different types is not a duplicate", () => {
    const r = parseUpdateBundle(bundle([put(observation("x1")), put({ resourceType: "ImagingStudy", id: "x1" })]));
    expect(r.ok && r.value.map((op) => op.key)).toEqual(["Observation/x1", "ImagingStudy/x1"]);
  });

  it(`at most MAX_UPDATE_ENTRIES (${MAX_UPDATE_ENTRIES}) entries; one more → 413`, () => {
    const entries = (n: number) => Array.from({ length: n }, (_, i) => put(observation(`o${i}`)));
    const atLimit = parseUpdateBundle(bundle(entries(MAX_UPDATE_ENTRIES)));
    expect(atLimit.ok && atLimit.value.length).toBe(MAX_UPDATE_ENTRIES);
    expect(parseUpdateBundle(bundle(entries(MAX_UPDATE_ENTRIES + 1)))).toEqual(
      failure(413, "too-long", `"updates" has ${MAX_UPDATE_ENTRIES + 1} entries; this hub accepts at most ${MAX_UPDATE_ENTRIES} per update`));
  });

  it("the size limit is checked before the entries (an oversized Bundle of junk is 413, not 400)", () => {
    expect(parseUpdateBundle(bundle(Array.from({ length: MAX_UPDATE_ENTRIES + 1 }, () => "junk")))).toMatchObject({ ok: false, status: 413 });
  });

  it.each<[string, unknown, string]>([
    ["type batch", bundle([], { type: "batch" }), `"updates" Bundle.type must be "transaction", got "batch"`],
    ["type collection", bundle([], { type: "collection" }), `"updates" Bundle.type must be "transaction", got "collection"`],
    ["no type", { resourceType: "Bundle", entry: [] }, `"updates" Bundle.type must be "transaction", got null`],
    ["not a Bundle", { resourceType: "Parameters", type: "transaction" }, `"updates" must be a Bundle`],
    ["not an object", "Bundle", `"updates" must be a Bundle`],
    ["missing", undefined, `"updates" must be a Bundle`],
    ["entry not an array", bundle({} as unknown as unknown[]), `"updates" Bundle.entry must be an array`],
  ])("%s → 400", (_label, input, detail) => {
    expect(parseUpdateBundle(input)).toEqual(failure(400, "invalid", detail));
  });

  it("a transaction Bundle without entries is an empty update", () => {
    expect(parseUpdateBundle({ resourceType: "Bundle", type: "transaction" })).toEqual({ ok: true, value: [] });
    expect(parseUpdateBundle(bundle([]))).toEqual({ ok: true, value: [] });
  });
});

describe("the spec's example Bundles (3-6-3), as our own fixtures", () => {
  it("PUT ImagingStudy + PUT Observation + PUT DiagnosticReport", () => {
    const r = parseUpdateBundle(bundle([
      put({ resourceType: "ImagingStudy", id: "7e9deb91-0017-4690-aebd-951cef34aba4", status: "available" }),
      put(observation("40afe766-3628-4ded-b5bd-925727c013b3")),
      put({ resourceType: "DiagnosticReport", id: "2402d3bd-e988-414b-b7f2-4322e86c9327", status: "preliminary" }),
    ]));
    expect(r.ok && r.value.map((op) => `${op.method} ${op.key}`)).toEqual([
      "PUT ImagingStudy/7e9deb91-0017-4690-aebd-951cef34aba4",
      "PUT Observation/40afe766-3628-4ded-b5bd-925727c013b3",
      "PUT DiagnosticReport/2402d3bd-e988-414b-b7f2-4322e86c9327",
    ]);
  });

  it("DELETE Observation by relative fullUrl + PUT DiagnosticReport", () => {
    const r = parseUpdateBundle(bundle([
      { fullUrl: "Observation/40afe766-3628-4ded-b5bd-925727c013b3", request: { method: "DELETE" } },
      put({ resourceType: "DiagnosticReport", id: "2402d3bd-e988-414b-b7f2-4322e86c9327", status: "final" }),
    ]));
    expect(r.ok && r.value.map((op) => `${op.method} ${op.key}`)).toEqual([
      "DELETE Observation/40afe766-3628-4ded-b5bd-925727c013b3",
      "PUT DiagnosticReport/2402d3bd-e988-414b-b7f2-4322e86c9327",
    ]);
  });
});
