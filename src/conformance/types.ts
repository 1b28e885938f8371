// Types of the FHIRcast Hub conformance kit: checks, their results, and the report. Runtime-neutral
// (no Node or Workers APIs); the kit itself talks to a hub only over HTTP and WebSockets.
import type { CheckContext } from "./context.ts";
import type { Feature } from "./outcome.ts";

// What checks throw and say, in a module of its own that the check context (./context.ts) can import
// without importing this one (test/e2e/source.e2e.test.ts: no import cycle).
export { assert, brief, CheckFailure, CheckSkip, fail, skip, TransportError } from "./outcome.ts";
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

/**
 * `error`: the check could not run or finish because the hub stopped answering (see Report.stopped);
 * it says nothing about conformance either way.
 */
export type Status = "pass" | "fail" | "skip" | "error";

export interface CheckResult {
  id: string;
  section: Section;
  level: Level;
  title: string;
  requirement: string;
  spec: SpecRef;
  status: Status;
  /** Why it failed, was skipped or is an error. */
  reason?: string;
  /** The transport error's code behind a failure or error, when known: ECONNREFUSED, UND_ERR_SOCKET, TIMEOUT. */
  cause?: string;
  /** A note from a passing check (e.g. which variant the hub chose). */
  note?: string;
  durationMs: number;
}

export interface Summary {
  total: number;
  pass: number;
  fail: number;
  skip: number;
  /** Checks that could not run or finish because the hub stopped answering. */
  error: number;
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
  /** Set when the hub stopped answering: the run stopped there and the rest is reported as `error`. */
  stopped?: Stop;
  results: CheckResult[];
}

/** A finished section: its counts and the time from its first check's start to its last one's end. */
export interface SectionProgress {
  section: Section;
  pass: number;
  fail: number;
  skip: number;
  error: number;
  durationMs: number;
}

/** Where and why a run stopped early. */
export interface Stop {
  /** The check during which the hub stopped answering; absent when it did not answer from the start. */
  check?: string;
  /** The error that revealed it, e.g. "POST …: fetch failed (connect ECONNREFUSED 127.0.0.1:8787)". */
  message: string;
  /** Why the hub is gone (the probe's code, else the error's), when known: ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET (reset), TIMEOUT. */
  code?: string;
  /** What the probe that confirmed it got (GET {hub.url}/.well-known/fhircast-configuration). */
  probe: string;
  /** Checks not run, or cut short, because of it. */
  notRun: number;
}
