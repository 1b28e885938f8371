// The one way the tests wait for something to happen: poll a condition until it holds, bounded by a
// timeout, never a fixed sleep. No imports, so it runs in workerd (the workers tests) and in Node
// (the e2e tests, their support modules and the benchmark) alike.

/** Polls `check` every `everyMs` until it returns true or `timeoutMs` passes; returns whether it became true. */
export async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** As `until`, but throws (naming `what`) when `timeoutMs` passes first. */
export async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string, everyMs = 50): Promise<void> {
  if (!(await until(check, timeoutMs, everyMs))) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
}
