// Types for `cloudflare:workers` env and exports inside the test runtime: the hub's own environment
// (src/env.ts), not restated here.
type HubEnvironment = import("../src/env").Env;
declare namespace Cloudflare {
  interface Env extends HubEnvironment {}
  interface Exports {
    default: Fetcher;
  }
}
