// Runs checks against a hub: discovers its features, skips what it does not advertise, runs the rest
// (several at a time, each on its own topic, each bounded by a timeout) and collects a report.
import { ALL_CHECKS } from "./checks/index.ts";
import { CheckContext, type KitOptions, Shared } from "./context.ts";
import { type Check, type CheckResult, CheckSkip, type Feature, type Report, type Section, type SectionProgress, type Stop, type Summary, TransportError } from "./types.ts";

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
  /** Report these check ids as skipped without running them (--skip). */
  skip?: string[];
  checks?: readonly Check[];
  /** Called as each check finishes (in completion order). */
  onResult?: (r: CheckResult) => void;
  /** Called when the last check of a section finishes. */
  onSection?: (p: SectionProgress) => void;
  /** Called once, when the hub has stopped answering (before the remaining checks are marked). */
  onStop?: (stop: Stop) => void;
}

export const SKIPPED_BY_OPTION = "skipped with --skip";

export function selectChecks(opts: Pick<RunOptions, "only" | "ids" | "checks">): Check[] {
  return (opts.checks ?? ALL_CHECKS).filter(
    (c) => (!opts.only?.length || opts.only.includes(c.section)) && (!opts.ids?.length || opts.ids.includes(c.id)),
  );
}

/** Cuts short the checks still running once the hub is known to be gone. */
class HubGone extends Error {
  override name = "HubGone";
}

/**
 * Whether the hub is gone. A transport error alone does not say so (one request may be slow, one
 * endpoint refused): a probe of the well-known document decides. Once gone, the run stops: running
 * checks are cut short and unstarted ones are not run, all reported as `error`.
 */
class HubWatch {
  stop: Stop | undefined;
  /** Rejects (HubGone) when the hub is found gone; raced against every running check. */
  readonly gone: Promise<never>;
  private readonly shared: Shared;
  private readonly onStop: ((stop: Stop) => void) | undefined;
  private cut: (e: Error) => void = () => {};

  constructor(shared: Shared, onStop?: (stop: Stop) => void) {
    this.shared = shared;
    this.onStop = onStop;
    this.gone = new Promise<never>((_, reject) => (this.cut = reject));
    this.gone.catch(() => {});
  }

  /** After `e` in check `check` (undefined: discovery): probes; true when the hub is gone (the run stops). */
  async confirm(check: string | undefined, e: TransportError): Promise<boolean> {
    if (this.stop) return true;
    const probe = await this.shared.probe();
    if (!probe) return false;
    if (!this.stop) {
      // The first check whose error led to the failed probe is where the hub stopped answering.
      // The probe's code says why the hub is gone (the error that started it may be a socket's, code-less).
      const code = probe.code ?? e.code;
      this.stop = { ...(check ? { check } : {}), message: e.message, ...(code ? { code } : {}), probe: probe.message, notRun: 0 };
      this.onStop?.(this.stop);
      this.cut(new HubGone("the hub stopped answering"));
    }
    return true;
  }

  /** "during <check>" or "at the start" (before any check). */
  get where(): string {
    return this.stop?.check ? `during ${this.stop.check}` : "at the start (reading the well-known document)";
  }
}

type Base = Omit<CheckResult, "status" | "durationMs">;

const baseOf = (check: Check): Base => ({ id: check.id, section: check.section, level: check.level, title: check.title, requirement: check.requirement, spec: check.spec });

/**
 * A check that is not to run: skipped with --skip or for a feature the hub does not advertise (only
 * `--skip` when `features` is false: the features are unknown), or undefined.
 */
function preSkip(check: Check, shared: Shared, skipIds: readonly string[], features = true): CheckResult | undefined {
  if (skipIds.includes(check.id)) return { ...baseOf(check), status: "skip", reason: SKIPPED_BY_OPTION, durationMs: 0 };
  if (!features) return undefined;
  const missing = (check.requires ?? []).find((f) => !shared.features[f]);
  if (missing) return { ...baseOf(check), status: "skip", reason: FEATURE_SKIPS[missing], durationMs: 0 };
  return undefined;
}

async function runOne(check: Check, shared: Shared, watch: HubWatch, skipIds: readonly string[]): Promise<CheckResult> {
  const skipped = preSkip(check, shared, skipIds);
  if (skipped) return skipped;
  const started = Date.now();
  const base = baseOf(check);
  const ctx = new CheckContext(shared);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = shared.opts.checkTimeoutMs;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the check did not finish within ${limit} ms`)), limit);
  });
  const error = (reason: string, cause?: string): CheckResult => ({ ...base, status: "error", reason, ...(cause ? { cause } : {}), durationMs: Date.now() - started });
  try {
    const note = await Promise.race([check.run(ctx), timeout, watch.gone]);
    return { ...base, status: "pass", ...(note ? { note } : {}), durationMs: Date.now() - started };
  } catch (e) {
    if (e instanceof HubGone) return error(`not finished: the hub stopped answering ${watch.where}`, watch.stop?.code);
    if (e instanceof TransportError) {
      if (!(await watch.confirm(check.id, e))) return { ...base, status: "fail", reason: e.message, ...(e.code ? { cause: e.code } : {}), durationMs: Date.now() - started };
      const during = watch.stop?.check === check.id ? "the hub stopped answering during this check" : `the hub stopped answering ${watch.where}`;
      return error(`${during}: ${e.message}`, e.code ?? watch.stop?.code);
    }
    const err = e as Error;
    const status = e instanceof CheckSkip ? "skip" : "fail";
    const reason = err.name === "CheckFailure" || err.name === "CheckSkip" ? err.message : `${err.name}: ${err.message}`;
    // A failure that comes once the hub is gone is not a verdict on the hub.
    if (status === "fail" && watch.stop) return error(`${reason} (not judged: the hub stopped answering ${watch.where})`, watch.stop.code);
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
    error: count("error"),
    requiredFailures: results.filter((r) => r.status === "fail" && r.level === "SHALL").length,
  };
}

/** Calls `onSection` as each section's last check finishes. */
function sectionTracker(checks: readonly Check[], onSection: ((p: SectionProgress) => void) | undefined): (r: CheckResult) => void {
  const open = new Map<Section, { left: number; results: CheckResult[]; start: number; end: number }>();
  for (const c of checks) {
    const s = open.get(c.section) ?? { left: 0, results: [], start: Infinity, end: 0 };
    s.left++;
    open.set(c.section, s);
  }
  return (r) => {
    const s = open.get(r.section);
    if (!s) return;
    const now = Date.now();
    s.results.push(r);
    s.start = Math.min(s.start, now - r.durationMs);
    s.end = Math.max(s.end, now);
    if (--s.left > 0) return;
    const { pass, fail, skip, error } = summarize(s.results);
    onSection?.({ section: r.section, pass, fail, skip, error, durationMs: s.end - s.start });
  };
}

/** Runs the selected checks against `opts.hubUrl` and returns the report (never throws for a check). */
export async function runConformance(opts: RunOptions): Promise<Report> {
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const shared = new Shared(opts);
  const watch = new HubWatch(shared, opts.onStop);
  const skipIds = opts.skip ?? [];
  await shared.discover();
  const checks = selectChecks(opts);
  const results: (CheckResult | undefined)[] = new Array(checks.length);
  const sectionDone = sectionTracker(checks, opts.onSection);
  const record = (i: number, r: CheckResult) => {
    results[i] = r;
    opts.onResult?.(r);
    sectionDone(r);
  };
  // A hub that does not answer at all: confirm it, and run nothing.
  if (shared.discoveryError) await watch.confirm(undefined, shared.discoveryError);
  // Checks on a shared topic would see each other's contexts: run them one at a time.
  const concurrency = shared.fixedTopic ? 1 : Math.max(1, shared.opts.concurrency);
  // Slow checks first, so that their waiting overlaps the rest; results keep definition order.
  const order = checks.map((c, i) => ({ c, i })).sort((a, b) => Number(Boolean(b.c.slow)) - Number(Boolean(a.c.slow)) || a.i - b.i).map((x) => x.i);
  let next = 0;
  const worker = async () => {
    while (next < order.length && !watch.stop) {
      const i = order[next++]!;
      record(i, await runOne(checks[i]!, shared, watch, skipIds));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, checks.length) }, worker));
  // What the stop left unstarted. Checks skipped anyway stay skipped (they never needed the hub),
  // unless the hub never served its well-known document: then its features are unknown.
  checks.forEach((c, i) => {
    if (results[i]) return;
    record(i, preSkip(c, shared, skipIds, shared.wellKnown !== undefined) ?? { ...baseOf(c), status: "error", reason: `not run: the hub stopped answering ${watch.where}`, ...(watch.stop?.code ? { cause: watch.stop.code } : {}), durationMs: 0 });
  });
  const done = results as CheckResult[];
  if (watch.stop) watch.stop.notRun = done.filter((r) => r.status === "error").length;
  return {
    tool: "fhircast-conformance",
    version: KIT_VERSION,
    fhircastVersion: "3.0.0",
    hubUrl: shared.opts.hubUrl,
    startedAt,
    durationMs: Date.now() - started,
    ...(shared.wellKnown ? { wellKnown: shared.wellKnown } : {}),
    features: { ...shared.features, fixedTopic: Boolean(shared.fixedTopic) },
    summary: summarize(done),
    ...(watch.stop ? { stopped: watch.stop } : {}),
    results: done,
  };
}
