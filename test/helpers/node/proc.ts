// Readings of a server's processes from Linux /proc, for the benchmark and the reliability runs.
import { readFile } from "node:fs/promises";

/** USER_HZ, the unit of CPU times in /proc (`getconf CLK_TCK`): 100 on Linux. */
const CLOCK_TICKS = 100;

/** A process's command, group and CPU time (user + system, ms) from /proc/<pid>/stat; undefined once it is gone. */
export async function procStat(pid: string): Promise<{ command: string; group: number; cpuMs: number } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Fields after the command: state(0) ppid(1) pgrp(2) … utime(11) stime(12), in clock ticks.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { command: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")), group: Number(fields[2]), cpuMs: ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS };
  } catch {
    return undefined;
  }
}

/** A process's resident memory (bytes) from /proc/<pid>/status; 0 once it is gone. */
export async function procRss(pid: string): Promise<number> {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1];
    return Number(kb ?? 0) * 1024;
  } catch {
    return 0;
  }
}
