// Types of the FHIRcast Hub conformance kit: checks, their results, and the report. Runtime-neutral
// (no Node or Workers APIs); the kit itself talks to a hub only over HTTP and WebSockets.
import type { CheckContext } from "./context.ts";
import type { Feature } from "./outcome.ts";

// What checks throw and say, in a module of its own that the check context (./context.ts) can import
// without importing this one (test/e2e/source.e2e.test.ts: no import cycle).
export { assert, brief, CheckFailure, CheckSkip, fail, skip } from "./outcome.ts";
export type { Feature } from "./outcome.ts";

/** How much a check matters: a failed SHALL fails the run (exit code 1); SHOULD and leniency only warn. */
export type Level = "SHALL" | "SHOULD" | "LENIENCY";

export const SECTIONS = [
  "discovery",
  "subscribing",
  "replay",
  "unsubscribe",
  "lease",
  "publish",
  "notification",
  "current-context",
  "multi-tab",
  "content-sharing",
  "syncerror",
  "security",
] as const;
export type Section = (typeof SECTIONS)[number];

export const SECTION_TITLES: Record<Section, string> = {
  discovery: "Discovery (well-known configuration)",
  subscribing: "Subscribing",
  replay: "Confirmation and current-context replay",
  unsubscribe: "Denial and unsubscribe",
  lease: "Lease",
  publish: "Publish (request context change)",
  notification: "Notification shape and acknowledgements",
  "current-context": "Get current context",
  "multi-tab": "Multi-tab (several open contexts)",
  "content-sharing": "Content sharing",
  syncerror: "SyncError",
  security: "Security",
};

export interface SpecRef {
  /** Section number in the FHIRcast 3.0.0 specification, e.g. "2.4". */
  section: string;
  /** Page of the published specification (https://fhircast.hl7.org/STU3/<page>.html). */
  page: string;
}

export interface Check {
  /** Stable id, `<section>.<name>`. */
  id: string;
  section: Section;
  level: Level;
  /** What the check verifies, in a few words. */
  title: string;
  /** The requirement, quoted or closely paraphrased from the specification. */
  requirement: string;
  spec: SpecRef;
  requires?: Feature[];
  /** Takes seconds of waiting (timeouts, leases): started first so that the run ends sooner. */
  slow?: boolean;
  /** Runs the check; throws CheckFailure (fail) or CheckSkip (skip). A returned string is a note. */
  run(ctx: CheckContext): Promise<string | void>;
}

export type Status = "pass" | "fail" | "skip";

export interface CheckResult {
  id: string;
  section: Section;
  level: Level;
  title: string;
  requirement: string;
  spec: SpecRef;
  status: Status;
  /** Why it failed or was skipped. */
  reason?: string;
  /** A note from a passing check (e.g. which variant the hub chose). */
  note?: string;
  durationMs: number;
}

export interface Summary {
  total: number;
  pass: number;
  fail: number;
  skip: number;
  /** Failed SHALL checks: any makes the run fail. */
  requiredFailures: number;
}

export interface Report {
  tool: "fhircast-conformance";
  version: string;
  fhircastVersion: "3.0.0";
  hubUrl: string;
  startedAt: string;
  durationMs: number;
  /** The hub's well-known document, when it served one. */
  wellKnown?: unknown;
  /** Features the hub advertises, as the kit understood them. */
  features: Record<string, boolean>;
  summary: Summary;
  results: CheckResult[];
}
