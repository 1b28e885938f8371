// A real HTTP server on loopback for the Workers tests (vitest globalSetup, runs in Node): the
// authorization server's JWKS endpoint as the hub meets it, healthy or broken. A test sets what a
// path answers (`PUT /<path>` with `{ status, contentType, body }`), the hub under test fetches
// `GET /<path>` (or POSTs to it: an introspection endpoint), `GET /__count/<path>` says how often it
// did, and `GET /__last/<path>` shows the last request's Authorization header and body. Tests reach it at `inject("jwksOrigin")` (test/helpers/jwks.ts).
import { createServer } from "node:http";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  interface ProvidedContext {
    jwksOrigin: string;
  }
}

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const answers = new Map<string, Answer>();
  const counts = new Map<string, number>();
  const last = new Map<string, { authorization?: string; body: string }>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "/";
      if (req.method === "PUT") {
        answers.set(path, JSON.parse(Buffer.concat(chunks).toString("utf8")) as Answer);
        res.writeHead(204).end();
      } else if (path.startsWith("/__count/")) {
        res.writeHead(200, { "Content-Type": "application/json" }).end(String(counts.get(path.slice("/__count".length)) ?? 0));
      } else if (path.startsWith("/__last/")) {
        res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(last.get(path.slice("/__last".length)) ?? null));
      } else {
        last.set(path, { authorization: req.headers.authorization, body: Buffer.concat(chunks).toString("utf8") });
        counts.set(path, (counts.get(path) ?? 0) + 1);
        const a = answers.get(path) ?? { status: 404, contentType: "text/plain", body: "no such key set" };
        res.writeHead(a.status, { "Content-Type": a.contentType }).end(a.body);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  project.provide("jwksOrigin", `http://127.0.0.1:${port}`);
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}
