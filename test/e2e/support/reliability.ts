// Node-side helpers for the reliability runs (issue 11): the inspector API, the workerd process's
// resident memory, a WebSocket client that never reads its socket, and small statistics. Every wait
// has a timeout. Type-checked by test/e2e/tsconfig.json (Node types only).
import { connect as tcpConnect, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import { http } from "../../helpers/server";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** GET /api/inspect/{topic}: subscribers, open contexts (with content) and the newest 50 events, newest first. */
export async function inspect(origin: string, topic: string, token?: string): Promise<InspectView> {
  const res = await http(`${origin}/api/inspect/${encodeURIComponent(topic)}`, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`inspect: expected 200, got ${res.status} ${text}`);
  return JSON.parse(text) as InspectView;
}

export interface InspectView {
  topic: string;
  subscribers: { id: string; name: string | null; events: string[]; connected: boolean; pendingAcks: number; missedAcks: number; lastSyncError: unknown }[];
  contexts: { anchor: string; type: string; current: boolean; versionId: string; event: any; content: { entry: { resource: any }[] } }[];
  events: { seq: number; acceptedAt: string; event: any }[];
}

/** The tests' one polling wait (test/helpers/until.ts), here for the modules that import it from here. */
export { until } from "../../helpers/until";

/** Resident memory (VmRSS, MiB) of the server's workerd processes, summed. */
export async function workerdRssMiB(server: { workerdRss(): Promise<number> }): Promise<number> {
  return Math.round(((await server.workerdRss()) / 2 ** 20) * 10) / 10;
}

/**
 * A WebSocket client that completes the opening handshake on a raw TCP socket and then stops
 * reading it (the kernel buffers fill, the server's writes back up): a subscriber that hung.
 */
export async function stalledSocket(endpoint: string, timeoutMs = 10_000): Promise<{ socket: Socket; destroy: () => void }> {
  const url = new URL(endpoint);
  const socket = tcpConnect({ host: url.hostname, port: Number(url.port) });
  const key = randomBytes(16).toString("base64");
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      socket.destroy();
      reject(new Error(`handshake with ${endpoint} timed out`));
    }, timeoutMs);
    let head = "";
    const onData = (d: Buffer) => {
      head += d.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      clearTimeout(t);
      socket.off("data", onData);
      // Stop reading for good: whatever arrives stays in the kernel's buffers.
      socket.pause();
      if (!/^HTTP\/1\.1 101/.test(head)) reject(new Error(`upgrade refused: ${head.split("\r\n")[0]}`));
      else resolve();
    };
    socket.on("data", onData);
    socket.once("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
    socket.once("connect", () => {
      socket.write(
        `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  });
  socket.on("error", () => undefined); // a reset after the hub drops it is expected
  return { socket, destroy: () => socket.destroy() };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function latencySummary(values: number[]): string {
  return `n=${values.length} p50=${percentile(values, 50).toFixed(1)} ms p95=${percentile(values, 95).toFixed(1)} ms max=${Math.max(...values).toFixed(1)} ms`;
}

/** Runs `task(i)` for i in 0..n-1 with at most `concurrency` at a time. */
export async function pool<T>(n: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await task(i);
      }
    }),
  );
  return out;
}
