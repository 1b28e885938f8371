// End to end: the two packages other projects install (docs/decisions.md "Packages"), tried as a
// user would. `npm pack` each (built by src/packages/build.mjs), `npm install <tarball>` into a fresh
// project in the temp directory (no way up to this repository's node_modules), then
//   (a) a Node script imports @fhircast-edge/client and goes subscribe → event → publish →
//       getContext → close against a running hub; its types check with tsc as an app's would;
//   (b) `npx fhircast-conformance` runs against the same hub, on the system's Node (20 on the test
//       machine) when there is one, and passes.
import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_CHECKS } from "../../src/conformance/checks/index.ts";
import type { Report } from "../../src/conformance/types.ts";
import { removeDir, ROOT, tempStateDir } from "../helpers/server";
import { runCommand as run } from "../helpers/node/command";
import { type SharedHub, sharedHub } from "../helpers/node/shared-hub";
import { HAS_SYSTEM_NPM, SYSTEM_NODE_MAJOR, SYSTEM_NODE_VERSION, systemEnv as userEnv } from "../helpers/node/system";

/** Must equal CLIENT_BUDGET_BYTES in src/packages/build.mjs (the build fails above it too). */
const CLIENT_BUDGET_BYTES = 40 * 1024;

/** A fresh project in the temp directory with `tarball` installed the way a user installs a package. */
async function projectWith(label: string, ...tarballs: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `fhircast-${label}-`));
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: `try-${label}`, private: true, type: "module" }, null, 2));
  // --offline: the packages have no dependencies, so nothing needs the registry.
  const installed = await run("npm", ["install", "--offline", "--no-audit", "--no-fund", ...tarballs], { cwd: dir, env: userEnv(), timeoutMs: 60_000 });
  expect(installed.code, `npm install ${tarballs.join(" ")}\n${installed.stdout}\n${installed.stderr}`).toBe(0);
  return dir;
}

let out: string;
// The shared default hub (e2e-shared project): the scripts make their own topics.
let server: SharedHub | undefined;
let buildLog = "";
const tarballs: Record<"client" | "conformance" | "ws", string> = { client: "", conformance: "", ws: "" };
const projects: string[] = [];

beforeAll(async () => {
  out = await tempStateDir("fhircast-packages");
  const hub = sharedHub();
  hub.catch(() => undefined); // awaited below, after the build
  const built = await run(process.execPath, [join(ROOT, "src/packages/build.mjs"), "all", "--out", out], { cwd: ROOT, timeoutMs: 90_000 });
  buildLog = built.stdout + built.stderr;
  if (built.code !== 0) throw new Error(`src/packages/build.mjs failed:\n${buildLog}`);
  // ws, which an app on Node 20 gives the client, packed from this repository's copy: installs offline.
  const sources = { client: join(out, "client"), conformance: join(out, "conformance"), ws: join(ROOT, "node_modules", "ws") };
  for (const name of ["client", "conformance", "ws"] as const) {
    const packed = await run("npm", ["pack", "--json", "--pack-destination", out, sources[name]], { cwd: out, env: userEnv(), timeoutMs: 60_000 });
    if (packed.code !== 0) throw new Error(`npm pack ${name} failed:\n${packed.stdout}\n${packed.stderr}`);
    const [{ filename }] = JSON.parse(packed.stdout) as [{ filename: string }];
    tarballs[name] = join(out, filename);
  }
  server = await hub;
}, 180_000);

afterAll(async () => {
  for (const d of [out, ...projects]) if (d) await removeDir(d);
});

describe("the client package", () => {
  it(`is one ES module within its budget (${CLIENT_BUDGET_BYTES / 1024} KB minified), whose size the build prints`, async () => {
    const bytes = (await stat(join(out, "client", "fhircast-client.js"))).size;
    console.info(`client bundle: ${bytes} bytes minified`);
    expect(bytes).toBeLessThanOrEqual(CLIENT_BUDGET_BYTES);
    expect(buildLog).toMatch(/fhircast-client\.js \d+\.\d KB minified, \d+\.\d KB gzipped \(budget 40 KB minified\)/);
  });

  it.skipIf(!HAS_SYSTEM_NPM)("installs from its tarball into a fresh project; a script there subscribes, gets an event, publishes, reads the context and closes (on Node 20 with ws)", async () => {
    const hub = server!;
    const dir = await projectWith("client-app", tarballs.client, tarballs.ws);
    projects.push(dir);
    const manifest = JSON.parse(await readFile(join(dir, "node_modules/@fhircast-edge/client/package.json"), "utf8")) as { dependencies?: object };
    expect(manifest.dependencies ?? {}).toEqual({});
    // The app: a viewer on the package, and another app (plain HTTP) that opens a patient.
    await writeFile(
      join(dir, "app.mjs"),
      `import { FhircastClient } from "@fhircast-edge/client";
const [hubOrigin] = process.argv.slice(2);
const token = async (clientId, topic) => {
  const res = await fetch(hubOrigin + "/auth/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, scope: "fhircast/*.read fhircast/*.write", ...(topic ? { "hub.topic": topic } : {}) }),
  });
  return res.json();
};
const viewer = await token("packaged-viewer");
const topic = viewer["hub.topic"];
// Node 20 has no global WebSocket: there the app passes one from ws, as docs/client.md says.
const webSocket = globalThis.WebSocket ? undefined : await import("ws").then(({ WebSocket }) => (url) => new WebSocket(url));
const client = new FhircastClient({ hubUrl: viewer["hub.url"], topic, token: viewer.access_token, events: ["Patient-open", "Patient-close"], subscriberName: "Packaged Viewer", webSocket });
const confirmation = await client.connect();
const received = client.next("event", (e) => e.anchor === "Patient/from-ehr", 10000);
const ehr = await token("ehr", topic);
const sent = await fetch(viewer["hub.url"], {
  method: "POST",
  headers: { "Content-Type": "application/json", Authorization: "Bearer " + ehr.access_token },
  body: JSON.stringify({ timestamp: new Date().toISOString(), id: crypto.randomUUID(), event: { "hub.topic": topic, "hub.event": "Patient-open", context: [{ key: "patient", resource: { resourceType: "Patient", id: "from-ehr" } }] } }),
});
const event = await received;
const published = await client.publish("Patient-open", { patient: { resourceType: "Patient", id: "from-viewer" } });
const context = await client.getContext();
const closed = await client.close();
console.log(JSON.stringify({ node: process.versions.node, ws: webSocket !== undefined, confirmed: confirmation["hub.mode"], ehrStatus: sent.status, event: { name: event.name, anchor: event.anchor }, published: published.id, context, closed }));
`,
    );
    // The project's Node (global WebSocket), and the system's when it is older than 22 (ws).
    const nodes = [process.execPath, ...(SYSTEM_NODE_MAJOR > 0 && SYSTEM_NODE_MAJOR < 22 ? ["node"] : [])];
    for (const node of nodes) {
      const app = await run(node, ["app.mjs", hub.origin], { cwd: dir, env: userEnv(), timeoutMs: 30_000 });
      expect(app.code, `${node}: ${app.stdout}\n${app.stderr.slice(-2000)}`).toBe(0);
      const result = JSON.parse(app.stdout.trim().split("\n").at(-1)!) as Record<string, any>;
      console.info(`client package on Node ${result.node}${result.ws ? " with ws" : ""}: subscribe, event, publish, getContext, close`);
      expect(result.ws).toBe(Number(String(result.node).split(".")[0]) < 22);
      expect(result.confirmed).toBe("subscribe");
      expect(result.ehrStatus).toBe(202);
      expect(result.event).toEqual({ name: "Patient-open", anchor: "Patient/from-ehr" });
      expect(typeof result.published).toBe("string");
      expect(result.context["context.type"]).toBe("Patient");
      expect(result.context.context).toContainEqual({ key: "patient", resource: { resourceType: "Patient", id: "from-viewer" } });
      expect(result.closed.code).toBe(1000);
    }

    // The package's types, as an application's tsc reads them (the DOM's lib, the package's exports).
    await writeFile(
      join(dir, "check.ts"),
      `import { FhircastClient, EventCatalog, type Notification, type ReceivedEvent } from "@fhircast-edge/client";
const client: FhircastClient = new FhircastClient({ hubUrl: "https://hub.example/api/hub", topic: "t", token: "x", events: ["Patient-open"] });
client.on("event", (e: ReceivedEvent) => { const n: Notification = e.notification; return n.event["hub.event"] === "Patient-open" ? 200 : 409; });
export const names: string[] = new EventCatalog().names();
// @ts-expect-error publish takes an event name and a context
void client.publish(42);
`,
    );
    await writeFile(
      join(dir, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { strict: true, noEmit: true, target: "es2022", lib: ["es2022", "dom"], module: "nodenext", moduleResolution: "nodenext", types: [] }, files: ["check.ts"] }),
    );
    const tsc = await run(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: dir, env: userEnv(), timeoutMs: 60_000 });
    expect(tsc.code, `tsc on the package's types\n${tsc.stdout}\n${tsc.stderr}`).toBe(0);

    // On a Node without a global WebSocket (20), a client without the option says which to pass.
    if (SYSTEM_NODE_MAJOR > 0 && SYSTEM_NODE_MAJOR < 22) {
      const old = await run("node", ["-e", `import("@fhircast-edge/client").then((m) => { try { new m.FhircastClient({ hubUrl: "http://127.0.0.1:1/api/hub", topic: "t", events: ["Patient-open"] }); console.log("constructed"); } catch (e) { console.log(e.name + ": " + e.message); } })`], { cwd: dir, env: userEnv(), timeoutMs: 20_000 });
      expect(old.stdout).toMatch(/^TypeError: .*webSocket/);
    }
  });
});

describe.skipIf(!HAS_SYSTEM_NPM)(`the conformance kit package, run with npx on the system's Node (${SYSTEM_NODE_VERSION || "none"})`, () => {
  it("installs from its tarball into a fresh project; npx fhircast-conformance passes against our hub and writes its reports to --out", async () => {
    const hub = server!;
    const dir = await projectWith("kit-user", tarballs.conformance);
    projects.push(dir);
    const reports = join(dir, "reports");
    const version = await run("npx", ["fhircast-conformance", "--version"], { cwd: dir, env: userEnv(), timeoutMs: 30_000 });
    const manifest = JSON.parse(await readFile(join(dir, "node_modules/@fhircast-edge/conformance/package.json"), "utf8")) as { version: string };
    expect(version.stdout.trim()).toBe(manifest.version);
    const kit = await run(
      "npx",
      ["fhircast-conformance", "--hub-url", hub.hubUrl, "--token-url", `${hub.origin}/auth/token`, "--client-id", "packaged-kit", "--out", reports],
      { cwd: dir, env: userEnv(), timeoutMs: 120_000 },
    );
    const report = JSON.parse(await readFile(join(reports, "conformance-report.json"), "utf8")) as Report;
    const failures = report.results.filter((r) => r.status !== "pass" && r.status !== "skip").map((r) => `${r.id}: ${r.status} ${r.reason}`);
    expect(failures, `${kit.stdout}\n${kit.stderr}`).toEqual([]);
    expect(kit.code, kit.stderr).toBe(0);
    expect(report.results.map((r) => r.id)).toEqual(ALL_CHECKS.map((c) => c.id));
    expect(report.summary).toMatchObject({ total: ALL_CHECKS.length, fail: 0 });
  });
});
