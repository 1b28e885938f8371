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
        // TOPIC_BINDING=optional: these tests drive every topic with one unbound test token (mintToken);
        // the binding itself is tested with an explicit setting (test/integration/auth-config.test.ts).
        miniflare: { bindings: { LOG_LEVEL: process.env.LOG_LEVEL ?? "silent", TOPIC_BINDING: "optional", ...bindings }, ...extra },
      }),
    ],
    // A real HTTP server on loopback that plays the authorization server's JWKS endpoint.
    test: { name, include, exclude, testTimeout: 20_000, globalSetup: ["./test/helpers/jwks-server.ts"] },
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
