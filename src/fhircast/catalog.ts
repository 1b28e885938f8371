// The FHIRcast 3.0.0 event catalog (fhircast.hl7.org/STU3/3_Events.html): every event the hub knows, as data.
// The hub validates publishes, subscriptions and scopes from this one table; nothing else lists events.
// Pure module: no I/O, no runtime imports.

/** How a context entry carries its value (fhircast.hl7.org/STU3/2-3-Events.html). */
export type ValueKind = "resource" | "reference";

/** What the hub does with an event's state (fhircast.hl7.org/STU3/4-2-2-multitab-considerations.html). */
export type EventRole =
  | "open" //   makes its anchor current, kept until the matching close
  | "close" //  ends its anchor's context
  | "update" // content change against the anchor's versionId (fhircast.hl7.org/STU3/2-10-ContentSharing.html)
  | "select" // forwarded unchanged, no state change
  | "home" //   Home-open: no anchor, clears the current context
  | "infrastructure"; // SyncError, UserLogout, UserHibernate: forwarded, no state change

export interface ContextKeySpec {
  key: string;
  min: number;
  /** Maximum occurrences; Infinity for `..*`. */
  max: number;
  kind: ValueKind;
  /** The FHIR resourceType the value (resource, or reference target) must have. */
  resourceType: string;
  /**
   * Accept an array of References under one key as well as one Reference per key
   * (DiagnosticReport-select's pre-2025 form, spec note A16).
   */
  lenientArray?: boolean;
}

export interface EventSpec {
  /** Canonical spelling (the spec's UpperCamel form); matching is case-insensitive. */
  name: string;
  role: EventRole;
  /** The anchor resource type for open/close/update/select events. */
  anchorType?: string;
  /** The context key of the anchor. */
  anchorKey?: string;
  keys: ContextKeySpec[];
  /** Event Maturity Model level stated on the event's page. */
  maturity: number;
  /** Proprietary events (reverse-domain names) accept any context. */
  proprietary?: boolean;
  /** Sent by the hub only (the legacy heartbeat): subscribers may ask for it, nobody may publish it. */
  hubOnly?: boolean;
}

const res = (key: string, resourceType: string, min: number, max: number): ContextKeySpec => ({
  key,
  resourceType,
  min,
  max,
  kind: "resource",
});
const ref = (key: string, resourceType: string, min: number, max: number): ContextKeySpec => ({
  key,
  resourceType,
  min,
  max,
  kind: "reference",
});

/** Anchor resource types and the context key each uses (fhircast.hl7.org/STU3/2-3-Events.html: `study` and `report` are legacy keys). */
export const ANCHORS = [
  { type: "Patient", key: "patient" },
  { type: "Encounter", key: "encounter" },
  { type: "ImagingStudy", key: "study" },
  { type: "DiagnosticReport", key: "report" },
] as const;

/** Every STU3 event, exactly as the event pages define it (fhircast.hl7.org/STU3/3_Events.html). */
export const STANDARD_EVENTS: readonly EventSpec[] = [
  { name: "Patient-open", role: "open", anchorType: "Patient", anchorKey: "patient", maturity: 3,
    keys: [res("patient", "Patient", 1, 1)] },
  { name: "Patient-close", role: "close", anchorType: "Patient", anchorKey: "patient", maturity: 3,
    keys: [res("patient", "Patient", 1, 1)] },
  { name: "Encounter-open", role: "open", anchorType: "Encounter", anchorKey: "encounter", maturity: 2,
    keys: [res("encounter", "Encounter", 1, 1), res("patient", "Patient", 1, 1)] },
  { name: "Encounter-close", role: "close", anchorType: "Encounter", anchorKey: "encounter", maturity: 2,
    keys: [res("encounter", "Encounter", 1, 1), res("patient", "Patient", 1, 1)] },
  { name: "ImagingStudy-open", role: "open", anchorType: "ImagingStudy", anchorKey: "study", maturity: 2,
    keys: [res("study", "ImagingStudy", 1, 1), res("encounter", "Encounter", 0, 1), res("patient", "Patient", 0, 1)] },
  { name: "ImagingStudy-close", role: "close", anchorType: "ImagingStudy", anchorKey: "study", maturity: 2,
    keys: [res("study", "ImagingStudy", 1, 1), res("encounter", "Encounter", 0, 1), res("patient", "Patient", 0, 1)] },
  { name: "DiagnosticReport-open", role: "open", anchorType: "DiagnosticReport", anchorKey: "report", maturity: 2,
    keys: [
      res("report", "DiagnosticReport", 1, 1),
      res("encounter", "Encounter", 0, 1),
      res("study", "ImagingStudy", 0, Infinity),
      res("patient", "Patient", 1, 1),
    ] },
  { name: "DiagnosticReport-close", role: "close", anchorType: "DiagnosticReport", anchorKey: "report", maturity: 2,
    keys: [
      res("report", "DiagnosticReport", 1, 1),
      res("encounter", "Encounter", 0, 1),
      res("study", "ImagingStudy", 0, Infinity),
      res("patient", "Patient", 1, 1),
    ] },
  { name: "DiagnosticReport-update", role: "update", anchorType: "DiagnosticReport", anchorKey: "report", maturity: 2,
    keys: [ref("report", "DiagnosticReport", 1, 1), ref("patient", "Patient", 0, 1), res("updates", "Bundle", 1, 1)] },
  { name: "DiagnosticReport-select", role: "select", anchorType: "DiagnosticReport", anchorKey: "report", maturity: 2,
    keys: [
      ref("report", "DiagnosticReport", 1, 1),
      ref("patient", "Patient", 0, 1),
      // Cardinality says 1..*, the text says "zero or more"; an empty selection is legal (spec note A16).
      { ...ref("select", "", 0, Infinity), lenientArray: true },
    ] },
  { name: "SyncError", role: "infrastructure", maturity: 2,
    keys: [res("operationoutcome", "OperationOutcome", 1, 1)] },
  { name: "UserLogout", role: "infrastructure", maturity: 1, keys: [res("parameters", "Parameters", 1, 1)] },
  { name: "UserHibernate", role: "infrastructure", maturity: 1, keys: [res("parameters", "Parameters", 1, 1)] },
  { name: "Home-open", role: "home", maturity: 1, keys: [] },
];

/**
 * The grammar allows `X-update` and `X-select` for any anchor (fhircast.hl7.org/STU3/2-3-Events.html); STU3 defines them only for
 * DiagnosticReport. The hub offers the same content sharing for its other anchor types, shaped like
 * the DiagnosticReport pair (maturity 0: not defined by an event page).
 */
export const GENERIC_CONTENT_EVENTS: readonly EventSpec[] = ANCHORS.filter((a) => a.type !== "DiagnosticReport").flatMap(
  (a): EventSpec[] => {
    const patient = a.type === "Patient" ? [] : [ref("patient", "Patient", 0, 1)];
    return [
      { name: `${a.type}-update`, role: "update", anchorType: a.type, anchorKey: a.key, maturity: 0,
        keys: [ref(a.key, a.type, 1, 1), ...patient, res("updates", "Bundle", 1, 1)] },
      { name: `${a.type}-select`, role: "select", anchorType: a.type, anchorKey: a.key, maturity: 0,
        keys: [ref(a.key, a.type, 1, 1), ...patient, { ...ref("select", "", 0, Infinity), lenientArray: true }] },
    ];
  },
);

/**
 * The ballot-era `heartbeat` event (removed from STU3), offered only while HEARTBEAT_SECONDS > 0 and
 * sent only to subscriptions that list it: STU3 forbids sending events a subscriber did not subscribe
 * to (https://fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html). Its `period` is a decimal.
 */
export const HEARTBEAT: EventSpec = { name: "heartbeat", role: "infrastructure", keys: [], maturity: 0, hubOnly: true };

/** Proprietary event names SHALL use reverse-domain notation and SHALL NOT contain `-` (fhircast.hl7.org/STU3/2-3-Events.html). */
export const PROPRIETARY_NAME = /^[a-z][a-z0-9]*(\.[a-z0-9_]+)+$/i;

/** The key every event may carry for pre-agreed extension data (fhircast.hl7.org/STU3/2-8-Extensions.html). */
export const EXTENSION_KEY = "extension";

/** A case-insensitive lookup over the standard events plus configured proprietary ones. */
export class EventCatalog {
  readonly events: readonly EventSpec[];
  private readonly byLower: Map<string, EventSpec>;

  constructor(proprietary: readonly string[] = [], opts: { heartbeat?: boolean } = {}) {
    const extra: EventSpec[] = proprietary.map((name) => ({
      name,
      role: "infrastructure",
      keys: [],
      maturity: 0,
      proprietary: true,
    }));
    this.events = [...STANDARD_EVENTS, ...GENERIC_CONTENT_EVENTS, ...extra, ...(opts.heartbeat ? [HEARTBEAT] : [])];
    this.byLower = new Map(this.events.map((e) => [e.name.toLowerCase(), e]));
  }

  /** Event names match case-insensitively (fhircast.hl7.org/STU3/2-3-Events.html). */
  get(name: string): EventSpec | undefined {
    return this.byLower.get(name.toLowerCase());
  }

  /** Canonical names for `eventsSupported`. */
  names(): string[] {
    return this.events.map((e) => e.name);
  }
}

/**
 * Parses the PROPRIETARY_EVENTS setting (comma-separated reverse-domain names).
 * Returns the names, or throws naming the first invalid one: a misconfiguration is a bug, not input.
 */
export function parseProprietaryEvents(setting: string | undefined): string[] {
  const names = (setting ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const n of names) {
    if (!PROPRIETARY_NAME.test(n)) {
      throw new Error(`PROPRIETARY_EVENTS: "${n}" is not a reverse-domain name without "-"`);
    }
  }
  return names;
}
