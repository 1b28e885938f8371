// Reconnect delays: exponential, bounded by a maximum, jittered so that many clients dropped by the
// same hub restart do not come back in lockstep.

export interface ReconnectOptions {
  /** Delay before the first attempt (default 500 ms). */
  initialDelayMs?: number;
  /** Upper bound of any delay (default 30 s). */
  maxDelayMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Fraction of each delay that is randomized away, 0..1 (default 0.5: a delay d becomes d/2..d). */
  jitter?: number;
  /** Attempts before the client gives up and closes (default: unbounded). */
  maxAttempts?: number;
}

export const RECONNECT_DEFAULTS: Required<ReconnectOptions> = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 0.5,
  maxAttempts: Number.POSITIVE_INFINITY,
};

/** The delay before attempt `attempt` (1-based). */
export function backoffDelay(attempt: number, options: Required<ReconnectOptions>, random: () => number = Math.random): number {
  const exp = options.initialDelayMs * options.factor ** Math.max(0, attempt - 1);
  const base = Math.min(options.maxDelayMs, exp);
  const jitter = Math.min(1, Math.max(0, options.jitter));
  return Math.max(0, Math.round(base * (1 - jitter * random())));
}
