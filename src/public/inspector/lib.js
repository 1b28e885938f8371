// @ts-check
// The subscriber client bundle (/fhircast-client.js, built from src/client by `npm run build:client`):
// the sandbox's apps, the event catalog and the templates' helpers. Loaded dynamically so a missing
// bundle is said on the page rather than failing silently.
import { h, message } from "./dom.js";

export const lib = await import("../fhircast-client.js").catch((e) => {
  document.body.prepend(
    h("p", { className: "fatal", attrs: { role: "alert" } },
      `The subscriber client bundle (/fhircast-client.js) did not load (${message(e)}). Build it with "npm run build:client" (npm start does).`),
  );
  throw e;
});
