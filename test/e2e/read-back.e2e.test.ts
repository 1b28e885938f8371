// Issue 20, finding 1, on the hub on plain workerd (test/helpers/node/workerd-hub.ts: the bundle
// `wrangler deploy` uploads, `npm start`'s settings): input the hub accepts never makes a later read
// fail, and what it cannot serve back is refused at publish. The attack shapes of the review — a 10
// KB open nesting arrays 5,000 deep, DiagnosticReport-updates of 0.9 MiB each — then GET, the
// inspector and the replay, also after a restart on the same state.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devToken, event, http, patient, publish, removeDir, subscribe, tempStateDir, uniqueTopic, type WorkerdServer, WsClient } from "../helpers/server";
import { startWorkerdHub } from "../helpers/node/workerd-hub.ts";

let dir: string;
let server: WorkerdServer | undefined;

function hub(): WorkerdServer {
  if (!server) throw new Error("server is not running");
  return server;
}

beforeAll(async () => {
  dir = await tempStateDir();
  server = await startWorkerdHub({ persistTo: dir });
});

afterAll(async () => {
  await server?.stop();
  await removeDir(dir);
});

const SCOPE = "fhircast/*.read fhircast/*.write fhircast-hub/inspect";

async function status(url: string, token: string | undefined): Promise<{ status: number; text: string }> {
  const res = await http(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  return { status: res.status, text: await res.text() };
}

/** GET current context, the inspector and a new subscriber's replay all answer. */
async function expectReadable(topic: string, token: string | undefined) {
  const get = await status(`${hub().hubUrl}/${encodeURIComponent(topic)}`, token);
  expect(get.status, get.text.slice(0, 300)).toBe(200);
  const inspect = await status(`${hub().origin}/api/inspect/${encodeURIComponent(topic)}`, token);
  expect(inspect.status, inspect.text.slice(0, 300)).toBe(200);
  const ws = await WsClient.connect(await subscribe(hub().hubUrl, topic, "DiagnosticReport-open", { token }));
  const [confirmation, replay] = await ws.waitFrames(2);
  expect(confirmation).toMatchObject({ "hub.mode": "subscribe" });
  expect(replay).toMatchObject({ event: { "hub.event": "DiagnosticReport-open" } });
  ws.close();
  return JSON.parse(get.text) as Record<string, unknown>;
}

describe("accepted input stays readable (hub on workerd)", () => {
  it("a 5,000-deep open is refused (400); 0.9 MiB updates are refused at the anchor's limit (413); reads answer, also after a restart", async () => {
    const topic = uniqueTopic("read-back");
    const token = await devToken(hub().origin, topic, SCOPE);
    const report = { resourceType: "DiagnosticReport", id: "r1", status: "unknown", subject: { reference: "Patient/p1" } };
    const open = event(topic, "DiagnosticReport-open", [{ key: "report", resource: report }, { key: "patient", resource: patient("p1") }]);
    expect((await publish(hub().hubUrl, open, { token })).status).toBe(202);

    const deep = JSON.stringify(event(topic, "Patient-open", [{ key: "patient", resource: patient("p2") }]))
      .replace(`"resourceType":"Patient",`, `"resourceType":"Patient","extension":${"[".repeat(5000)}1${"]".repeat(5000)},`);
    const refused = await http(hub().hubUrl, { method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` }, body: deep });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain("MAX_JSON_DEPTH");
    await expectReadable(topic, token);

    const statuses: number[] = [];
    let last = "";
    for (let i = 0; i < 6; i++) {
      const ctx = JSON.parse((await status(`${hub().hubUrl}/${encodeURIComponent(topic)}`, token)).text) as { "context.versionId": string };
      const obs = { resourceType: "Observation", id: `o${i}`, status: "preliminary", code: { text: "x" }, note: [{ text: "x".repeat(900_000) }] };
      const update = event(topic, "DiagnosticReport-update", [
        { key: "report", reference: { reference: "DiagnosticReport/r1" } },
        { key: "updates", resource: { resourceType: "Bundle", id: crypto.randomUUID(), type: "transaction", entry: [{ request: { method: "PUT" }, resource: obs }] } },
      ], { "context.versionId": ctx["context.versionId"] });
      const res = await publish(hub().hubUrl, update, { token });
      statuses.push(res.status);
      last = await res.text();
    }
    expect(statuses).toEqual([202, 202, 202, 202, 413, 413]);
    expect(last).toContain("MAX_CONTENT_BYTES_PER_ANCHOR");
    const before = await expectReadable(topic, token);

    const port = hub().port;
    await hub().stop();
    server = undefined;
    server = await startWorkerdHub({ persistTo: dir, port });
    expect(await expectReadable(topic, token)).toEqual(before);
  }, 120_000);
});
