// Test projects: tests that run inside workerd through the Workers vitest plugin (unit, integration,
// and "limits", the same runtime with low limits so they can be reached), and end-to-end tests that
// run in Node against the real local server (wrangler dev).
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

function workers(name: string, include: string[], exclude: string[], bindings: Record<string, string>, extra: object = {}) {
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: { bindings: { LOG_LEVEL: process.env.LOG_LEVEL ?? "silent", ...bindings }, ...extra },
      }),
    ],
    test: { name, include, exclude, testTimeout: 20_000 },
  };
}

export default defineConfig({
  test: {
    projects: [
      workers("workers", ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"], ["test/integration/limits/**"], {}),
      workers("limits", ["test/integration/limits/**/*.test.ts"], [], {
        MAX_SUBSCRIPTIONS_PER_TOPIC: "3", MAX_INSPECTORS_PER_TOPIC: "2", ALLOWED_ORIGINS: "https://viewer.example",
        MAX_CONTENT_BYTES_PER_ANCHOR: "11534336", MAX_CONTENT_BYTES_PER_TOPIC: "11534336",
      }, {
        ratelimits: { RATE_LIMITER: { namespace_id: "1001", simple: { limit: 5, period: 60 } } },
      }),
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
