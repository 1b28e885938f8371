// Scratch space for the hub on plain workerd (test/helpers/node/workerd-hub.ts), one per test run:
// the first file that starts such a hub builds it there (~4 s of CPU, once), the others wait for it.
// Listed as a globalSetup of every e2e project; Vitest runs it once per project in its own process,
// so the projects share one directory through globalThis, removed after the last one ends.
import type { TestProject } from "vitest/node";
import { removeDir, tempStateDir } from "./paths.ts";

declare module "vitest" {
  interface ProvidedContext {
    /** The run's directory for the workerd hub's build (test/helpers/node/workerd-hub.ts). */
    workerdHubDir: string;
  }
}

const shared = globalThis as { fhircastWorkerdHub?: { dir: Promise<string>; users: number } };

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const run = (shared.fhircastWorkerdHub ??= { dir: tempStateDir("fhircast-workerd-hub"), users: 0 });
  run.users++;
  project.provide("workerdHubDir", await run.dir);
  return async () => {
    if (--run.users > 0) return;
    delete shared.fhircastWorkerdHub;
    await removeDir(await run.dir);
  };
}
