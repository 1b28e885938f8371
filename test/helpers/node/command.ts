// A command run as a child process to its end, bounded by a timeout: its exit code, stdout, and
// stderr (also line by line, with when each line arrived, for tests of progress output).
import { spawn } from "node:child_process";

export interface CommandRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Each stderr line, with the ms since the start at which it arrived. */
  stderrLines: { line: string; at: number }[];
  /** ms from the start to the exit. */
  elapsedMs: number;
}

export interface CommandOptions {
  cwd: string;
  env?: Record<string, string | undefined>;
  timeoutMs: number;
}

/** Runs `cmd args` to its end; rejects only when it cannot start or outlives `timeoutMs` (then it is killed). */
export function runCommand(cmd: string, args: string[], opts: CommandOptions): Promise<CommandRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
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
      reject(new Error(`${cmd} ${args.join(" ")} did not finish within ${opts.timeoutMs} ms\n${stdout}\n${stderr}`));
    }, opts.timeoutMs);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      if (partial) stderrLines.push({ line: partial, at: Date.now() - started });
      resolve({ code, stdout, stderr, stderrLines, elapsedMs: Date.now() - started });
    });
  });
}
