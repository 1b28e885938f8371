// A tiny run of the benchmark (issue 9), so that it keeps working: it checks that every figure was
// produced and that nothing was lost, duplicated or reordered. It checks no timing.
import { spawn, spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { removeDir, ROOT, tempStateDir } from "../helpers/server";

describe("benchmark smoke run", () => {
  it("npm run bench -- --smoke produces every figure with no loss, duplicate or reordering", async () => {
    const out = await tempStateDir("bench-smoke");
    try {
      const code = await new Promise<number | null>((resolve, reject) => {
        const child = spawn(process.execPath, ["--experimental-transform-types", "--no-warnings", "test/bench/run.ts", "--smoke", "--out", out], {
          cwd: ROOT,
          stdio: ["ignore", "pipe", "pipe"],
        });
        let output = "";
        child.stdout.on("data", (d: Buffer) => (output += d.toString()));
        child.stderr.on("data", (d: Buffer) => (output += d.toString()));
        const t = setTimeout(() => {
          child.kill("SIGKILL");
          reject(new Error(`bench smoke run timed out:\n${output.slice(-3000)}`));
        }, 170_000);
        child.on("exit", (c) => {
          clearTimeout(t);
          if (c !== 0) console.error(output.slice(-3000));
          resolve(c);
        });
      });
      expect(code).toBe(0);
      const results = JSON.parse(await readFile(join(out, "results", "latest.json"), "utf8"));
      expect(results.latency.map((f: { runtime: string; n: number }) => `${f.runtime} ${f.n}`)).toEqual(["wrangler dev 1", "wrangler dev 3", "plain workerd 1", "plain workerd 3"]);
      for (const f of results.latency) {
        for (const t of ["hub", "baseline"]) {
          expect(f.delivered[t].n).toBeGreaterThan(0);
          expect(f.loss[t]).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0 });
        }
      }
      expect(results.throughput).toHaveLength(4);
      for (const f of results.throughput) {
        for (const t of ["hub", "baseline"]) {
          expect(f.eventsPerSecond[t]).toBeGreaterThan(0);
          // Both CPU figures are read from the processes, so a run that does any work measures some.
          expect(f.serverCpuPerEvent[t]).toBeGreaterThan(0);
          expect(f.clientCpuPerEvent[t]).toBeGreaterThan(0);
          expect(f.loss[t]).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0 });
        }
      }
      expect(results.memory).toHaveLength(10);
      expect(await readFile(join(out, "results", "latest.md"), "utf8")).toContain("Publish → delivered to all N subscribers");
      for (const runtime of ["wrangler-dev", "plain-workerd"]) expect(await readFile(join(out, `latency-${runtime}.svg`), "utf8")).toContain("<svg");
      expect(results.soak.rssMiB.hub.length).toBe(3);
    } finally {
      await removeDir(out);
    }
  }, 180_000);

  it("npm run bench:probes -- --smoke measures every memory probe", () => {
    const run = spawnSync(process.execPath, ["--experimental-transform-types", "--no-warnings", "test/bench/probes.ts", "--smoke"], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 170_000,
    });
    expect(run.status, run.stderr + run.stdout.slice(-2000)).toBe(0);
    // Four socket probes and five object probes, each a table row with a number.
    expect(run.stdout.match(/^\| .+ \| -?\d+\.\d \|$/gm)).toHaveLength(9);
  }, 180_000);
});
