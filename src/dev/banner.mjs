// The start banner of `npm start` (src/dev/start.mjs) and `npm run selfhost` (src/selfhost/run.mjs):
// once the hub answers GET /health, where it is (hub.url, the inspector), how it authenticates and
// where its state lives, so that the first screen says how to use it.

/** Polls GET {origin}/health until it answers 200; false if the child exits first. */
export async function waitHealthy(origin, child, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    try {
      const res = await fetch(`${origin}/health`, { signal: AbortSignal.timeout(10_000) });
      if (res.status === 200) {
        await res.body?.cancel();
        return true;
      }
      // Up, but refusing every request because of its settings: say why instead of waiting on.
      const body = await res.text();
      if (res.status === 503 && body.includes('"refused"')) {
        console.error(`${origin}/health: 503 ${body}`);
        return true;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

/** Whether the development token issuer answers (AUTH_MODE=dev in effect). */
export async function devIssuerOn(origin) {
  try {
    const res = await fetch(`${origin}/auth/jwks`, { signal: AbortSignal.timeout(5000) });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** `label  value` lines, aligned, each prefixed with the command's name. */
export function printBanner(prefix, rows) {
  const width = Math.max(...rows.map(([label]) => label.length));
  for (const [label, value] of rows) console.log(`${prefix}: ${label.padEnd(width)}  ${value}`);
}

/** A loopback port from PORT (default `fallback`), or exit 2 naming the problem. */
export function portFromEnv(prefix, fallback) {
  const raw = (process.env.PORT ?? "").trim();
  if (raw === "") return fallback;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) {
    console.error(`${prefix}: PORT must be a port number (1-65535), not "${process.env.PORT}"`);
    process.exit(2);
  }
  return port;
}

/**
 * Stops the child on Ctrl-C or SIGTERM (the terminal sends SIGINT to the whole process group, the
 * child included; SIGTERM from a supervisor reaches only this process) and exits with the child.
 */
export function relaySignals(child) {
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    });
  }
  child.once("exit", (code, signal) => process.exit(code ?? (signal === "SIGTERM" || signal === "SIGINT" ? 0 : 1)));
}
