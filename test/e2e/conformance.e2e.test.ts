// End to end: the conformance kit (src/conformance, `npm run conformance`) against the real local
// server on a loopback port, exactly as an integrator runs it against their hub: the CLI as a child
// process, tokens from the hub's development issuer. Our hub must pass every check (skips are listed),
// the JSON and Markdown reports must be written, and docs/conformance.md must list every check. The
// kit bundled into one file for Node 20 (no global WebSocket: it uses ws) passes too.
// The CLI's own behaviour (a hub that dies, --skip, --out) is tested on a fake hub:
// test/e2e/conformance-kit.e2e.test.ts.
import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_CHECKS } from "../../src/conformance/checks/index.ts";
import { docsBlock, renderCheckList } from "../../src/conformance/report.ts";
import { type Report, SECTIONS } from "../../src/conformance/types.ts";
import { removeDir, ROOT, tempStateDir } from "../helpers/server";
import { type SharedHub, sharedHub } from "../helpers/node/shared-hub";
import { progressLines, runCli } from "./support/conformance-cli.ts";

let reportDir: string;
// The shared default hub (e2e-shared project): the kit makes its own topics.
let server: SharedHub | undefined;

beforeAll(async () => {
  reportDir = await tempStateDir("fhircast-conformance-report");
  server = await sharedHub();
});

afterAll(async () => {
  if (reportDir) await removeDir(reportDir);
});

describe("the conformance kit against our hub", () => {
  it("passes every check, writes the JSON and Markdown reports, exits 0", { timeout: 90_000 }, async () => {
    const hub = server!;
    const { code, stdout, stderr, stderrLines, elapsedMs: elapsed } = await runCli(
      ["--hub-url", hub.hubUrl, "--token-url", `${hub.origin}/auth/token`, "--client-id", "conformance-e2e", "--out", reportDir],
      { timeoutMs: 75_000 },
    );

    const report = JSON.parse(await readFile(join(reportDir, "conformance-report.json"), "utf8")) as Report;
    const failures = report.results.filter((r) => r.status === "fail").map((r) => `${r.id} (${r.level}): ${r.reason}`);
    const skips = report.results.filter((r) => r.status === "skip").map((r) => `${r.id}: ${r.reason}`);
    if (skips.length > 0) console.info(`conformance: ${skips.length} skipped\n  ${skips.join("\n  ")}`);
    expect(failures, `${stdout}\n${stderr}`).toEqual([]);
    expect(code, stderr).toBe(0);

    // Every check ran and reported; only the TLS check may skip on a loopback http hub.
    expect(report.results.map((r) => r.id)).toEqual(ALL_CHECKS.map((c) => c.id));
    expect(report.summary).toMatchObject({ total: ALL_CHECKS.length, fail: 0, requiredFailures: 0 });
    expect(report.results.filter((r) => r.status === "skip").map((r) => r.id)).toEqual(["security.tls"]);
    expect(report.hubUrl).toBe(hub.hubUrl);
    expect(report.features).toMatchObject({ getCurrentContext: true, contentSharing: true, syncError: true, credentials: true, tokenMinting: true });

    // The terminal table and the Markdown report name every check.
    const markdown = await readFile(join(reportDir, "conformance-report.md"), "utf8");
    for (const c of ALL_CHECKS) {
      expect(stdout).toContain(c.id);
      expect(markdown).toContain(`\`${c.id}\``);
    }
    expect(stdout).toContain("No required (SHALL) check failed.");
    expect(elapsed).toBeLessThan(60_000);

    // Progress while it runs: one line per section on stderr, the first long before the end (the
    // acknowledgement and lease checks take over 10 s; discovery's are done in the first second).
    const lines = progressLines(stderrLines);
    expect(lines.map((l) => l.section).sort()).toEqual([...SECTIONS].sort());
    expect(lines.find((l) => l.section === "discovery")!.at).toBeLessThan(elapsed - 5_000);
  });

  it("bundled into one file for Node 20 (the package's build), it runs without a global WebSocket, on ws", { timeout: 60_000 }, async () => {
    const hub = server!;
    // The file the package ships (src/packages/build.mjs): everything bundled, ws included.
    const built = spawnSync(process.execPath, [join(ROOT, "src/packages/build.mjs"), "conformance", "--out", join(reportDir, "bundle")], { cwd: ROOT, encoding: "utf8", timeout: 50_000 });
    expect(built.status, `${built.stdout}${built.stderr}`).toBe(0);
    const outfile = join(reportDir, "bundle", "conformance", "cli.js");
    // Checks that subscribe, receive text frames (acknowledged), and see the hub close a socket.
    const ids = ["subscribing.confirmation", "replay.current-context", "publish.broadcast-with-request-id", "notification.json-text-frames", "unsubscribe.socket-closed"];
    const out = join(reportDir, "bundle-report");
    const run = await runCli(["--hub-url", hub.hubUrl, "--token-url", `${hub.origin}/auth/token`, "--check", ids.join(","), "--out", out], {
      timeoutMs: 50_000,
      script: outfile,
      // Node 20 has no global WebSocket: take it away from the Node running the tests.
      nodeArgs: ["--import", "data:text/javascript,delete globalThis.WebSocket"],
    });
    const report = JSON.parse(await readFile(join(out, "conformance-report.json"), "utf8")) as Report;
    const results = report.results.map((r) => `${r.id} ${r.status}${r.reason ? `: ${r.reason}` : ""}`);
    expect(results.sort(), run.stderr).toEqual(ids.map((id) => `${id} pass`).sort());
    expect(run.code).toBe(0);
  });

  it("exits 2 with the usage on a bad command line", { timeout: 20_000 }, async () => {
    const { code, stderr } = await runCli(["--only", "nonsense", "--hub-url", server!.hubUrl], { timeoutMs: 15_000 });
    expect(code).toBe(2);
    expect(stderr).toContain("unknown section(s) nonsense");
  });

  it("docs/conformance.md lists exactly the kit's checks (npm run conformance:docs)", async () => {
    const doc = await readFile(join(ROOT, "docs/conformance.md"), "utf8");
    expect(docsBlock(doc)).toBe(renderCheckList(ALL_CHECKS).trim());
  });
});
