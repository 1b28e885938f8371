// Test projects: tests that run inside workerd through the Workers vitest plugin (unit, integration,
// and "limits", the same runtime with low limits so they can be reached), and end-to-end tests that
// run in Node against the hub as a separate server: wrangler dev as `npm start` runs it, or plain
// workerd with the same bundle and settings (test/helpers/node/workerd-hub.ts).
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * Files at a time after the e2e files (groupOrder 1: the workers tier and the e2e-load files), one
 * more than before them: the workers tier's tests mostly wait on timers (leases, acks, alarms), and
 * beside the load run they left a third of the CPU idle with three (group 1: 64 s → 56 s).
 */
const GROUP_1_WORKERS = 4;

function workers(name: string, include: string[], exclude: string[], bindings: Record<string, string>, extra: object = {}) {
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        // TOPIC_BINDING=optional: these tests drive every topic with one unbound test token (mintToken);
        // the binding itself is tested with an explicit setting (test/integration/auth-config.test.ts).
        miniflare: { bindings: { LOG_LEVEL: process.env.LOG_LEVEL ?? "silent", TOPIC_BINDING: "optional", ...bindings }, ...extra },
      }),
    ],
    // globalSetup: a real HTTP server on loopback that plays the authorization server's JWKS endpoint.
    // isolate: false: the files of a project share their runtimes (one Miniflare, one workerd per
    // vitest worker) instead of a fresh one per file, ~3 s of CPU each (workers + limits: 178 s → 66 s
    // alone). Nothing carries over that a file relies on: every test uses its own topics, clients and
    // tokens (uniqueTopic, per-test client ids); the files pass in any order (--sequence.shuffle.files).
    // groupOrder 1: after the e2e files, beside the load run (see e2e-load).
    test: { name, include, exclude, testTimeout: 20_000, globalSetup: ["./test/helpers/jwks-server.ts"], isolate: false, maxWorkers: GROUP_1_WORKERS, sequence: { groupOrder: 1 } },
  };
}

/** The e2e files that run after the others, beside the workers tier (see the e2e-load project). */
const E2E_LOAD = ["reliability", "stalled-memory"].map((f) => `test/e2e/${f}.e2e.test.ts`);

/**
 * The e2e files that use the one shared default hub (test/helpers/node/shared-hub.ts) instead of
 * starting their own: to opt in, list the file here and call sharedHub() in it.
 */
const E2E_SHARED = ["content-race", "conformance", "packages"].map((f) => `test/e2e/${f}.e2e.test.ts`);

/**
 * Every e2e project may start the hub on plain workerd (test/helpers/node/workerd-hub.ts), built once
 * per run. isolate: false: a worker process runs file after file, instead of a fresh process per
 * file (~0.5 s of CPU each); each file's own state lives in its module, and the helpers it shares
 * hold only what the run shares anyway (the shared hub's origin, the workerd hub's build).
 */
const WORKERD_HUB = "./test/helpers/node/workerd-hub-setup.ts";

function e2e(name: string, include: string[], exclude: string[], globalSetup: string[] = [], groupOrder = 0) {
  const maxWorkers = groupOrder === 1 ? GROUP_1_WORKERS : undefined;
  return { test: { name, include, exclude, environment: "node", testTimeout: 60_000, hookTimeout: 60_000, globalSetup: [WORKERD_HUB, ...globalSetup], maxWorkers, isolate: false, sequence: { groupOrder } } };
}

/**
 * The longest e2e files (~15–45 s each, measured), started first in this order. Vitest starts a
 * group's files project by project, and, without the timings of an earlier run (a fresh clone in CI),
 * largest file first: the benchmark's small file started last and ran alone for 40 s at the end.
 * The last two lead group 1 (the order is kept within each group): the load run is its longest file.
 */
const LONGEST_FIRST = ["bench-smoke", "first-hour", "inspector", "packages", "conformance", "hub", "client", "ops", "read-back", "selfhost", "reliability", "stalled-memory"];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const i = LONGEST_FIRST.findIndex((name) => f.moduleId.endsWith(`/test/e2e/${name}.e2e.test.ts`));
      return i < 0 ? LONGEST_FIRST.length : i;
    };
    // Stable: every other file keeps Vitest's order.
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  test: {
    // Three files at a time, of any project, on this 2-core machine (four in group 1, above). Vitest's default is one
    // (cores - 1), which ran the whole suite one file after another. With two, the CPU still idled
    // while e2e files waited on their servers and sockets; with three it is busy throughout the e2e
    // files (npm test 292 s → 251 s on a quiet machine, docs/decisions.md "Test run time").
    maxWorkers: 3,
    sequence: { sequencer: LongestFirst },
    projects: [
      workers("workers", ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"], ["test/integration/limits/**"], {}),
      workers("limits", ["test/integration/limits/**/*.test.ts"], [], {
        MAX_SUBSCRIPTIONS_PER_TOPIC: "3", MAX_INSPECTORS_PER_TOPIC: "2", ALLOWED_ORIGINS: "https://viewer.example",
        MAX_CONTENT_BYTES_PER_ANCHOR: "11534336", MAX_CONTENT_BYTES_PER_TOPIC: "11534336",
      }, {
        ratelimits: { RATE_LIMITER: { namespace_id: "1001", simple: { limit: 5, period: 60 } } },
      }),
      // End to end. These files run beside each other: each starts its own servers on free ports
      // with their own state directories.
      e2e("e2e", ["test/e2e/**/*.test.ts"], [...E2E_LOAD, ...E2E_SHARED]),
      // The files on the shared default hub, which this project's globalSetup starts (only when one
      // of them runs) and stops. Beside the others, like them.
      e2e("e2e-shared", E2E_SHARED, [], ["./test/helpers/node/shared-hub-setup.ts"]),
      // The load run (200 topics × 5 subscribers) loads the machine on purpose, and stalled-memory
      // reads RSS with a 5 s ack timeout. Beside the e2e files (most start wrangler dev: both cores
      // busy for seconds) the load run's requests hit their 10 s timeouts; so both run after them
      // (groupOrder 1), beside the workers tier only, whose tests mostly wait on timers and leave
      // CPU idle.
      e2e("e2e-load", E2E_LOAD, [], [], 1),
    ],
  },
});
