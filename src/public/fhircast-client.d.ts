// Types of the client bundle (/fhircast-client.js, built from src/client by `npm run build:client`
// and not committed): the page imports "../fhircast-client.js", and the type checker reads this
// file beside it instead, so `npm run typecheck` works before the bundle is built.
export * from "../client/index";
