// Types for `cloudflare:workers` env and exports inside the test runtime.
declare namespace Cloudflare {
  interface Env {
    TOPIC: DurableObjectNamespace<import("../src/topic/object").Topic>;
    ISSUER: DurableObjectNamespace<import("../src/auth/dev-issuer").DevIssuer>;
  }
  interface Exports {
    default: Fetcher;
  }
}
