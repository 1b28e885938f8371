// Types for `cloudflare:workers` env and exports inside the test runtime.
declare namespace Cloudflare {
  interface Env extends import("../src/config").Env {}
  interface Exports {
    default: Fetcher;
  }
}
