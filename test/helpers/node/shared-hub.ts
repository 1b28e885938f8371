// The shared default hub of the `e2e-shared` project (started by test/helpers/node/shared-hub-setup.ts).
// To use it from a new e2e file: add the file to E2E_SHARED in vitest.config.ts and call sharedHub().
// It is shared: use your own topics (uniqueTopic), and never stop, restart or reconfigure it (a file
// that needs that starts its own HubServer).
import { inject } from "vitest";
import { waitUntil } from "../until.ts";

export interface SharedHub {
  origin: string;
  hubUrl: string;
}

let ready: Promise<SharedHub> | undefined;

/** The shared hub, once it answers GET /health (it may still be starting when the file begins). */
export function sharedHub(timeoutMs = 60_000): Promise<SharedHub> {
  return (ready ??= (async () => {
    const origin = inject("sharedHubOrigin");
    if (!origin) throw new Error("no shared hub: list this file in E2E_SHARED (vitest.config.ts)");
    await waitUntil(
      () => fetch(`${origin}/health`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status === 200, () => false),
      timeoutMs,
      `the shared hub on ${origin} to answer GET /health (its start is reported by the vitest process; E2E_SERVER_LOG=1 shows wrangler's output)`,
      150,
    );
    return { origin, hubUrl: `${origin}/api/hub` };
  })());
}
