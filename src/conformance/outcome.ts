// How a conformance check ends besides passing (failed, skipped), the helpers checks use for it, and
// the optional hub features a check may need. Runtime-neutral; re-exported by ./types.ts.

/** Optional hub features; a check that needs one the hub does not advertise is skipped, not failed. */
export type Feature =
  | "getCurrentContext" //  well-known capabilities.supportsGetCurrentContext or getCurrentSupport
  | "contentSharing" //     DiagnosticReport-open and DiagnosticReport-update in eventsSupported
  | "syncError" //          SyncError in eventsSupported
  | "credentials" //        the kit was given a token or a token URL (the hub uses OAuth)
  | "tokenMinting"; //      the kit can obtain tokens with chosen scopes / client ids (--token-url)

/** Thrown by a check to fail it. */
export class CheckFailure extends Error {
  override name = "CheckFailure";
}

/** Thrown by a check to skip it (an optional feature is missing, or it cannot be tested here). */
export class CheckSkip extends Error {
  override name = "CheckSkip";
}

export function fail(message: string): never {
  throw new CheckFailure(message);
}

export function skip(message: string): never {
  throw new CheckSkip(message);
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new CheckFailure(message);
}

/** Short JSON for failure messages. */
export function brief(value: unknown, max = 300): string {
  let s: string;
  try {
    s = typeof value === "string" ? value : JSON.stringify(value);
  } catch {
    s = String(value);
  }
  if (s === undefined) s = String(value);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
