// Runs the conformance kit's command line as a child process, as an integrator does: the TypeScript
// source with the Node that runs the tests (24: type stripping), or a bundled file. Collects stdout,
// stderr (with when each stderr line arrived) and the exit code; bounded by a timeout.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "../../helpers/server";

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Each stderr line, with the ms since the start at which it arrived. */
  stderrLines: { line: string; at: number }[];
  /** ms from the start to the exit. */
  elapsedMs: number;
}

export interface CliOptions {
  timeoutMs: number;
  cwd?: string;
  /** Node options before the script (e.g. --import). */
  nodeArgs?: string[];
  /** The script to run (default src/conformance/cli.ts). */
  script?: string;
}

export function runCli(args: string[], opts: CliOptions): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.script ?? join(ROOT, "src/conformance/cli.ts"), ...args], {
      cwd: opts.cwd ?? ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    let stdout = "";
    let stderr = "";
    let partial = "";
    const stderrLines: { line: string; at: number }[] = [];
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
    child.stderr.on("data", (d: Buffer) => {
      const text = d.toString("utf8");
      stderr += text;
      const lines = (partial + text).split("\n");
      partial = lines.pop()!;
      for (const line of lines) stderrLines.push({ line, at: Date.now() - started });
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the conformance CLI did not finish within ${opts.timeoutMs} ms\n${stdout}\n${stderr}`));
    }, opts.timeoutMs);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      if (partial) stderrLines.push({ line: partial, at: Date.now() - started });
      resolve({ code, stdout, stderr, stderrLines, elapsedMs: Date.now() - started });
    });
  });
}

/** The report folder the CLI printed ("Reports: <dir>/conformance-report.json"). */
export function reportDirOf(stdout: string): string | undefined {
  const m = /^Reports: (.+)[/\\]conformance-report\.json$/m.exec(stdout);
  return m?.[1];
}

/** Progress lines ("<section>  6 passed, 0 failed, 1 skipped  (1.4 s)") by section. */
export function progressLines(lines: { line: string; at: number }[]): { section: string; line: string; at: number }[] {
  const out: { section: string; line: string; at: number }[] = [];
  for (const l of lines) {
    const m = /^([a-z-]+) +\d+ passed, \d+ failed, \d+ skipped(, \d+ errors?)?  \(\d+\.\d s\)$/.exec(l.line);
    if (m) out.push({ section: m[1]!, ...l });
  }
  return out;
}
