// End to end: the conformance kit (src/conformance, `npm run conformance`) against the real local
// server on a loopback port, exactly as an integrator runs it against their hub: the CLI as a child
// process, tokens from the hub's development issuer. Our hub must pass every check (skips are listed),
// the JSON and Markdown reports must be written, and docs/conformance.md must list every check.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_CHECKS } from "../../src/conformance/checks/index.ts";
import { docsBlock, renderCheckList } from "../../src/conformance/report.ts";
import type { Report } from "../../src/conformance/types.ts";
import { removeDir, ROOT, tempStateDir } from "../helpers/server";
import { type SharedHub, sharedHub } from "../helpers/node/shared-hub";

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

/** Runs the CLI with the Node that runs the tests (24: type stripping); bounded by `timeoutMs`. */
function runCli(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "src/conformance/cli.ts"), ...args], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the conformance CLI did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("the conformance kit against our hub", () => {
  it("passes every check, writes the JSON and Markdown reports, exits 0", { timeout: 90_000 }, async () => {
    const hub = server!;
    const started = Date.now();
    const { code, stdout, stderr } = await runCli(
      ["--hub-url", hub.hubUrl, "--token-url", `${hub.origin}/auth/token`, "--client-id", "conformance-e2e", "--report-dir", reportDir],
      75_000,
    );
    const elapsed = Date.now() - started;

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
  });

  it("exits 2 with the usage on a bad command line", { timeout: 20_000 }, async () => {
    const { code, stderr } = await runCli(["--only", "nonsense", "--hub-url", server!.hubUrl], 15_000);
    expect(code).toBe(2);
    expect(stderr).toContain("unknown section(s) nonsense");
  });

  it("docs/conformance.md lists exactly the kit's checks (npm run conformance:docs)", async () => {
    const doc = await readFile(join(ROOT, "docs/conformance.md"), "utf8");
    expect(docsBlock(doc)).toBe(renderCheckList(ALL_CHECKS).trim());
  });
});
