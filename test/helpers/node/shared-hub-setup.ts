// One default hub (wrangler dev exactly as `npm start` runs it, on a fresh state directory) shared by
// the e2e files of the `e2e-shared` project (vitest globalSetup, runs in Node). A `wrangler dev` start
// costs ~5 s of CPU on two cores; a file that only needs a default hub, and never stops, restarts or
// reconfigures it, uses this one (test/helpers/node/shared-hub.ts) with its own topics. The start is
// not awaited here, so files of other projects run meanwhile; sharedHub() waits for /health.
import type { TestProject } from "vitest/node";
import { HubServer } from "./hub-server.ts";
import { freePort, removeDir, tempStateDir } from "./paths.ts";

declare module "vitest" {
  interface ProvidedContext {
    /** Origin of the shared default hub (http://127.0.0.1:<port>); it may still be starting. */
    sharedHubOrigin: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await tempStateDir("fhircast-shared-hub");
  const port = await freePort();
  const starting = HubServer.start({ persistTo: dir, port });
  // A failed start is reported here (with wrangler's output) and, as a timeout, by sharedHub().
  starting.catch((e: Error) => console.error(`the shared hub did not start: ${e.message}`));
  project.provide("sharedHubOrigin", `http://127.0.0.1:${port}`);
  return async () => {
    await starting.then((s) => s.stop(), () => undefined);
    await removeDir(dir);
  };
}
