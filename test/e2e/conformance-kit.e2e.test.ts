// The conformance kit's command line itself (not our hub): against a small fake hub on loopback
// (test/e2e/support/fake-hub.ts), no wrangler. A hub that dies during the run makes the run
// INCOMPLETE (exit 3) naming the check and the cause, with the rest reported as `error`, never as
// failures; --skip, --out and its temp-folder default; one progress line per section on stderr.
import { mkdtemp, readdir, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ALL_CHECKS } from "../../src/conformance/checks/index.ts";
import { type Report, SECTIONS } from "../../src/conformance/types.ts";
import { removeDir } from "../helpers/server";
import { type CliRun, progressLines, reportDirOf, runCli } from "./support/conformance-cli.ts";
import { FakeHub } from "./support/fake-hub.ts";

const dirs: string[] = [];
const hubs: FakeHub[] = [];

afterAll(async () => {
  await Promise.all(hubs.map((h) => h.stop()));
  await Promise.all(dirs.map((d) => removeDir(d)));
});

async function scratch(name: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), `fhircast-kit-${name}-`));
  dirs.push(d);
  return d;
}

async function fakeHub(dieAfter?: number): Promise<FakeHub> {
  const hub = await FakeHub.start({ dieAfter });
  hubs.push(hub);
  return hub;
}

async function reports(dir: string): Promise<{ report: Report; json: string; markdown: string }> {
  const json = await readFile(join(dir, "conformance-report.json"), "utf8");
  return { report: JSON.parse(json) as Report, json, markdown: await readFile(join(dir, "conformance-report.md"), "utf8") };
}

const IDS = ALL_CHECKS.map((c) => c.id);

describe("the conformance kit against a hub that dies during the run", () => {
  it("says where the hub stopped answering and why, reports the rest as errors (not failures), exits 3", { timeout: 30_000 }, async () => {
    // The discovery read and a few checks' requests are answered; then the port refuses.
    const hub = await fakeHub(12);
    const out = await scratch("dies");
    const run = await runCli(["--hub-url", hub.hubUrl, "--out", out], { timeoutMs: 25_000 });
    expect(hub.requests.length, "the hub died").toBeGreaterThanOrEqual(12);
    expect(run.code, run.stderr).toBe(3);

    const { report, json, markdown } = await reports(out);
    const stopped = report.stopped;
    expect(stopped, run.stdout).toBeDefined();
    expect(IDS).toContain(stopped!.check);
    expect(stopped!.code).toBe("ECONNREFUSED");
    expect(stopped!.probe).toContain("ECONNREFUSED");
    const sentence = `the hub stopped answering during ${stopped!.check}`;
    expect(run.stderr).toContain(sentence); // said as it happened
    expect(run.stdout).toContain(`INCOMPLETE: ${sentence} (ECONNREFUSED)`);
    expect(markdown).toContain(`INCOMPLETE: ${sentence} (ECONNREFUSED)`);
    expect(run.stdout).not.toContain("NOT CONFORMANT");
    expect(json).toContain("connect ECONNREFUSED 127.0.0.1:");

    // Every check is reported; the check it stopped in and what could not run or finish are errors.
    expect(report.results.map((r) => r.id)).toEqual(IDS);
    const errors = report.results.filter((r) => r.status === "error");
    expect(errors.length).toBeGreaterThan(10);
    expect(report.summary.error).toBe(errors.length);
    expect(stopped!.notRun).toBe(errors.length);
    expect(report.results.find((r) => r.id === stopped!.check)!.status).toBe("error");
    expect(errors.filter((r) => r.reason!.startsWith("not run: ")).length).toBeGreaterThan(0);
    for (const r of errors) {
      expect(r.reason, r.id).toContain("the hub stopped answering");
      expect(r.cause, r.id).toBeDefined();
    }
    // No failure is the hub being gone: the refused port shows up in errors only.
    const port = new URL(hub.origin).port;
    const goneFailures = report.results.filter((r) => r.status === "fail" && r.reason!.includes(`ECONNREFUSED 127.0.0.1:${port}`));
    expect(goneFailures).toEqual([]);
    expect(run.stdout).not.toContain("fetch failed\n");
    expect(run.elapsedMs).toBeLessThan(20_000);
  });

  it("a hub that does not answer at all: INCOMPLETE from the start, nothing run, exit 3", { timeout: 30_000 }, async () => {
    const hub = await fakeHub();
    await hub.stop(); // the port is free again: connects are refused
    const out = await scratch("down");
    const run = await runCli(["--hub-url", hub.hubUrl, "--out", out, "--skip", "discovery.fhircast-version"], { timeoutMs: 25_000 });
    expect(run.code, run.stderr).toBe(3);
    expect(run.stdout).toContain("INCOMPLETE: the hub did not answer at the start (reading the well-known document) (ECONNREFUSED)");
    const { report } = await reports(out);
    expect(report.stopped!.check).toBeUndefined();
    // Nothing ran: all errors, but what --skip named stays skipped.
    expect(report.summary).toMatchObject({ pass: 0, fail: 0, skip: 1, error: ALL_CHECKS.length - 1 });
    expect(report.results.find((r) => r.id === "discovery.fhircast-version")).toMatchObject({ status: "skip", reason: "skipped with --skip" });
  });
});

describe("the conformance kit's options and output", () => {
  let full: CliRun;
  let fullReport: Report;

  it("prints one progress line per section on stderr; without --out writes to a new temp folder, not the cwd", { timeout: 40_000 }, async () => {
    const hub = await fakeHub();
    const cwd = await scratch("cwd");
    full = await runCli(["--hub-url", hub.hubUrl], { timeoutMs: 35_000, cwd });
    // The fake hub fails many checks (NOT CONFORMANT) but never stops answering.
    expect(full.code, full.stderr).toBe(1);
    expect(full.stdout).toContain("NOT CONFORMANT");

    const dir = reportDirOf(full.stdout);
    expect(dir, full.stdout).toBeDefined();
    dirs.push(dir!);
    expect(dirname(dir!)).toBe(tmpdir());
    expect(basename(dir!)).toMatch(/^fhircast-conformance-/);
    ({ report: fullReport } = await reports(dir!));
    expect(fullReport.results.map((r) => r.id)).toEqual(IDS);
    expect(fullReport.stopped).toBeUndefined();
    expect(fullReport.summary.error).toBe(0);
    expect(await readdir(cwd), "nothing is written to the current directory").toEqual([]);

    // One line per section, on stderr only, with that section's counts.
    const lines = progressLines(full.stderrLines);
    expect(lines.map((l) => l.section).sort()).toEqual([...SECTIONS].sort());
    for (const l of lines) {
      const rows = fullReport.results.filter((r) => r.section === l.section);
      const n = (s: string) => rows.filter((r) => r.status === s).length;
      expect(l.line).toMatch(new RegExp(`^${l.section} +${n("pass")} passed, ${n("fail")} failed, ${n("skip")} skipped  `));
    }
    expect(progressLines(full.stdout.split("\n").map((line) => ({ line, at: 0 })))).toEqual([]);
  });

  it("--skip reports the named checks as skipped without running them; an unknown id is a usage error", { timeout: 30_000 }, async () => {
    const hub = await fakeHub();
    const out = await scratch("skip");
    const skipped = ["discovery.events-supported", "discovery.fhircast-version", "subscribing.accepted-202"];
    const run = await runCli(
      ["--hub-url", hub.hubUrl, "--only", "discovery,subscribing", "--skip", `${skipped[0]},${skipped[1]}`, "--skip", skipped[2]!, "--report-dir", out],
      { timeoutMs: 25_000 },
    );
    expect(run.code, run.stderr).not.toBe(2);
    const { report } = await reports(out); // --report-dir: the old name of --out
    for (const id of skipped) expect(report.results.find((r) => r.id === id), id).toMatchObject({ status: "skip", reason: "skipped with --skip" });
    // Run without --skip, the same checks were judged (the fake hub fails fhircastVersion "STU3").
    expect(fullReport.results.find((r) => r.id === "discovery.fhircast-version")!.status).toBe("fail");
    expect(report.results.filter((r) => r.reason === "skipped with --skip").map((r) => r.id).sort()).toEqual([...skipped].sort());

    const bad = await runCli(["--hub-url", hub.hubUrl, "--skip", "discovery.nope"], { timeoutMs: 15_000 });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown check(s) discovery.nope");
  });

  it("--out writes both reports to the folder given, creating it", { timeout: 30_000 }, async () => {
    const hub = await fakeHub();
    const out = join(await scratch("out"), "nested", "reports");
    const run = await runCli(["--hub-url", hub.hubUrl, "--only", "discovery", "--out", out], { timeoutMs: 25_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(reportDirOf(run.stdout)).toBe(out);
    expect((await stat(join(out, "conformance-report.json"))).isFile()).toBe(true);
    expect((await stat(join(out, "conformance-report.md"))).isFile()).toBe(true);
    expect(progressLines(run.stderrLines).map((l) => l.section)).toEqual(["discovery"]);
  });

  it("the usage text documents the exit codes and the new options", { timeout: 20_000 }, async () => {
    const run = await runCli(["--help"], { timeoutMs: 15_000 });
    expect(run.code).toBe(0);
    for (const s of ["--skip <id>", "--out <dir>", "--report-dir", "3  INCOMPLETE"]) expect(run.stdout).toContain(s);
  });
});
