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

/**
 * A request to the hub or a socket got no answer (refused, reset, timed out, or a WebSocket that
 * closed abnormally): the hub may be gone. The runner probes the hub: if it still answers, the check
 * fails with this message; if not, the run stops and what is left is reported as `error`.
 */
export class TransportError extends Error {
  override name = "TransportError";
  /** The cause's code when the platform gives one: ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET, TIMEOUT. */
  readonly code: string | undefined;

  constructor(message: string, code?: string) {
    super(message);
    this.code = code;
  }
}

/** The innermost cause of a platform error (fetch's TypeError wraps the socket error in `cause`). */
export function rootCause(e: unknown): { message: string; code?: string } {
  let err = e as { message?: unknown; code?: unknown; cause?: unknown; errors?: unknown } | undefined;
  let message = typeof err?.message === "string" ? err.message : String(e);
  let code: string | undefined;
  for (let depth = 0; err && depth < 5; depth++) {
    if (typeof err.code === "string") code = err.code;
    if (typeof err.message === "string" && err.message !== "") message = err.message;
    // Node's connect to a name with several addresses throws an AggregateError of the attempts.
    const next = err.cause ?? (Array.isArray(err.errors) ? err.errors[0] : undefined);
    err = typeof next === "object" && next !== null ? (next as typeof err) : undefined;
  }
  return code ? { message, code } : { message };
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
