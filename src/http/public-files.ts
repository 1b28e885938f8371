// The static files of the self-host build: the inspector page and the browser client. On the edge
// these never reach the Worker ([assets] in wrangler.toml serves them first); workerd has no such
// layer, so the self-host build binds a read-only disk service holding a copy of src/public/ as
// PUBLIC_FILES (src/selfhost/build.mjs) and the Worker answers these paths from it. Without the
// binding (the edge, SELFHOST_ASSETS=off) nothing changes: the router's 404.
import type { IRequest } from "itty-router";

interface WithPublicFiles {
  PUBLIC_FILES?: Fetcher;
}

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  map: "application/json; charset=utf-8",
  json: "application/json; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
};

/** The file a path names, as [assets] with html_handling "auto-trailing-slash" maps it; else undefined. */
function fileFor(path: string): string | undefined {
  if (path === "/fhircast-client.js" || path === "/fhircast-client.js.map") return path;
  if (path === "/inspector/") return "/inspector/index.html";
  // One level of plain file names: no directories, no dot files (the disk service refuses `..` too).
  if (/^\/inspector\/[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(path)) return path;
  return undefined;
}

/** GET/HEAD of a static file where the build binds PUBLIC_FILES; undefined (next route) otherwise. */
export async function publicFile(request: IRequest, env: WithPublicFiles): Promise<Response | undefined> {
  if (!env.PUBLIC_FILES || (request.method !== "GET" && request.method !== "HEAD")) return undefined;
  const url = new URL(request.url);
  if (url.pathname === "/inspector") return new Response(null, { status: 307, headers: { Location: `/inspector/${url.search}` } });
  const file = fileFor(url.pathname);
  if (file === undefined) return undefined;
  const res = await env.PUBLIC_FILES.fetch(`http://public-files${file}`, { method: request.method });
  if (res.status !== 200) {
    await res.body?.cancel();
    return undefined;
  }
  const ext = file.slice(file.lastIndexOf(".") + 1);
  const headers = new Headers({ "Content-Type": TYPES[ext] ?? "application/octet-stream", "Cache-Control": "no-cache" });
  const length = res.headers.get("Content-Length");
  if (length !== null) headers.set("Content-Length", length);
  return new Response(request.method === "HEAD" ? null : res.body, { status: 200, headers });
}
