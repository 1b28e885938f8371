// Runs the conformance kit's command line as a child process, as an integrator does: the TypeScript
// source with the Node that runs the tests (24: type stripping), or a bundled file. Collects stdout,
// stderr (with when each stderr line arrived) and the exit code; bounded by a timeout.
import { join } from "node:path";
import { type CommandRun, runCommand } from "../../helpers/node/command.ts";
import { ROOT } from "../../helpers/server";

export type CliRun = CommandRun;

export interface CliOptions {
  timeoutMs: number;
  cwd?: string;
  /** Node options before the script (e.g. --import). */
  nodeArgs?: string[];
  /** The script to run (default src/conformance/cli.ts). */
  script?: string;
}

export function runCli(args: string[], opts: CliOptions): Promise<CliRun> {
  return runCommand(process.execPath, [...(opts.nodeArgs ?? []), opts.script ?? join(ROOT, "src/conformance/cli.ts"), ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: "1" },
    timeoutMs: opts.timeoutMs,
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
