// Runs checks against a hub: discovers its features, skips what it does not advertise, runs the rest
// (several at a time, each on its own topic, each bounded by a timeout) and collects a report.
import { ALL_CHECKS } from "./checks/index.ts";
import { CheckContext, type KitOptions, Shared } from "./context.ts";
import { type Check, type CheckResult, CheckSkip, type Feature, type Report, type Section, type Summary } from "./types.ts";

export const KIT_VERSION = "1.0.0";

const FEATURE_SKIPS: Record<Feature, string> = {
  getCurrentContext: "the hub does not advertise Get Current Context (capabilities.supportsGetCurrentContext / getCurrentSupport)",
  contentSharing: "the hub does not list DiagnosticReport-open and DiagnosticReport-update in eventsSupported (content sharing)",
  syncError: "the hub does not list SyncError in eventsSupported",
  credentials: "no credentials given (--token or --token-url): the hub is tested as one without OAuth",
  tokenMinting: "needs tokens with chosen scopes and client ids (--token-url)",
};

export interface RunOptions extends KitOptions {
  /** Run only these sections. */
  only?: Section[];
  /** Run only these check ids. */
  ids?: string[];
  checks?: readonly Check[];
  /** Called as each check finishes (in completion order). */
  onResult?: (r: CheckResult) => void;
}

export function selectChecks(opts: Pick<RunOptions, "only" | "ids" | "checks">): Check[] {
  return (opts.checks ?? ALL_CHECKS).filter(
    (c) => (!opts.only?.length || opts.only.includes(c.section)) && (!opts.ids?.length || opts.ids.includes(c.id)),
  );
}

async function runOne(check: Check, shared: Shared): Promise<CheckResult> {
  const started = Date.now();
  const base = { id: check.id, section: check.section, level: check.level, title: check.title, requirement: check.requirement, spec: check.spec };
  const missing = (check.requires ?? []).find((f) => !shared.features[f]);
  if (missing) return { ...base, status: "skip", reason: FEATURE_SKIPS[missing], durationMs: 0 };
  const ctx = new CheckContext(shared);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = shared.opts.checkTimeoutMs;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the check did not finish within ${limit} ms`)), limit);
  });
  try {
    const note = await Promise.race([check.run(ctx), timeout]);
    return { ...base, status: "pass", ...(note ? { note } : {}), durationMs: Date.now() - started };
  } catch (e) {
    const err = e as Error;
    const status = e instanceof CheckSkip ? "skip" : "fail";
    const reason = err.name === "CheckFailure" || err.name === "CheckSkip" ? err.message : `${err.name}: ${err.message}`;
    return { ...base, status, reason, durationMs: Date.now() - started };
  } finally {
    clearTimeout(timer);
    ctx.cleanup();
  }
}

export function summarize(results: CheckResult[]): Summary {
  const count = (s: string) => results.filter((r) => r.status === s).length;
  return {
    total: results.length,
    pass: count("pass"),
    fail: count("fail"),
    skip: count("skip"),
    requiredFailures: results.filter((r) => r.status === "fail" && r.level === "SHALL").length,
  };
}

/** Runs the selected checks against `opts.hubUrl` and returns the report (never throws for a check). */
export async function runConformance(opts: RunOptions): Promise<Report> {
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const shared = new Shared(opts);
  await shared.discover();
  const checks = selectChecks(opts);
  // Checks on a shared topic would see each other's contexts: run them one at a time.
  const concurrency = shared.fixedTopic ? 1 : Math.max(1, shared.opts.concurrency);
  const results: CheckResult[] = new Array(checks.length);
  // Slow checks first, so that their waiting overlaps the rest; results keep definition order.
  const order = checks.map((c, i) => ({ c, i })).sort((a, b) => Number(Boolean(b.c.slow)) - Number(Boolean(a.c.slow)) || a.i - b.i).map((x) => x.i);
  let next = 0;
  const worker = async () => {
    while (next < order.length) {
      const i = order[next++]!;
      const r = await runOne(checks[i]!, shared);
      results[i] = r;
      opts.onResult?.(r);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, checks.length) }, worker));
  return {
    tool: "fhircast-conformance",
    version: KIT_VERSION,
    fhircastVersion: "3.0.0",
    hubUrl: shared.opts.hubUrl,
    startedAt,
    durationMs: Date.now() - started,
    ...(shared.wellKnown ? { wellKnown: shared.wellKnown } : {}),
    features: { ...shared.features, fixedTopic: Boolean(shared.fixedTopic) },
    summary: summarize(results),
    results,
  };
}
