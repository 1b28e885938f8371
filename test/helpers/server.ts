// Node-side helpers for the end-to-end tests and the benchmark, one module per concern under
// test/helpers/node/: the paths and scratch space, the real local server exactly as `npm start` runs
// it (wrangler dev) and plain workerd (the hub on it, with `npm start`'s settings, is
// test/helpers/node/workerd-hub.ts, which needs Vitest and so is not re-exported here), the HTTP calls an application makes, a WebSocket client with a
// frame queue, and /proc readings. Every wait has a timeout. Node only: type-checked by
// test/e2e/tsconfig.json, not by the Workers tsconfig. The event fixtures are shared with the
// workers tests (test/helpers/fixtures.ts).
export { freePort, removeDir, ROOT, startScriptEnv, tempStateDir } from "./node/paths.ts";
export { HubServer, type ServerOptions } from "./node/hub-server.ts";
export { WorkerdServer } from "./node/workerd-server.ts";
export { currentContext, devToken, http, publish, subscribe, uniqueTopic } from "./node/http.ts";
export { WsClient } from "./node/ws-client.ts";
export { event, patient } from "./fixtures.ts";
