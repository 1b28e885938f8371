#!/usr/bin/env node
// The command line of the FHIRcast hub conformance kit. Runs as TypeScript on Node >= 22.18 (type
// stripping), or bundled into one JavaScript file (esbuild) on Node >= 20. The only Node-specific
// file of the kit: arguments, report files, exit code, and the WebSocket implementation.
//
//   npm run conformance -- --hub-url http://127.0.0.1:8787/api/hub \
//       --token-url http://127.0.0.1:8787/auth/token --client-id my-app
//
// Exit code: see USAGE (0 conformant, 1 not conformant, 2 usage error or the kit broke, 3 incomplete).
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ALL_CHECKS } from "./checks/index.ts";
import {
  DOCS_END,
  DOCS_START,
  renderCheckList,
  renderJson,
  renderMarkdown,
  renderSectionProgress,
  renderStop,
  renderTable,
  replaceDocsBlock,
  verdict,
} from "./report.ts";
import { KIT_VERSION, runConformance, selectChecks } from "./runner.ts";
import { type Section, SECTIONS } from "./types.ts";
import type { WebSocketConstructor } from "./ws.ts";

/** Exit codes (documented in USAGE and docs/conformance.md). */
const EXIT = { conformant: 0, "not-conformant": 1, usage: 2, incomplete: 3 } as const;

const USAGE = `fhircast-conformance ${KIT_VERSION}: black-box conformance checks for a FHIRcast 3.0.0 (STU3) Hub

Usage:
  fhircast-conformance --hub-url <hub.url> [options]
  npm run conformance -- --hub-url <hub.url> [options]

Credentials (pick one; none tests a hub without OAuth):
  --token <t>            a bearer token used for every request (pass --topic if it is bound to one)
  --token-url <url>      OAuth token endpoint; tokens come from client_credentials grants with the
                         scopes each check needs and hub.topic set (our dev issuer: {origin}/auth/token)
  --client-id <id>       client_id for --token-url (default fhircast-conformance)
  --client-secret <s>    client_secret for --token-url, if the endpoint wants one

Options:
  --topic <t>            use this hub.topic for every check (checks then run one at a time)
  --out <dir>            where conformance-report.json and .md go (default: a new folder under the
                         OS temp dir, printed at the end); --report-dir <dir> is the same
  --only <section>       run only these sections (repeat or comma-separate): ${SECTIONS.join(", ")}
  --check <id>           run only these checks (repeat or comma-separate)
  --skip <id>            report these checks as skipped without running them (repeat or comma-separate)
  --timeout <ms>         HTTP request timeout (default 10000)
  --wait <ms>            how long to wait for an expected frame (default 5000)
  --quiet-period <ms>    how long to wait to be sure a frame does not come (default 1000)
  --concurrency <n>      checks run at once, each on its own topic (default 8)
  --strict               exit 1 when any check fails, not only SHALL checks
  --no-color             plain terminal output
  --list                 print the checks (Markdown) and exit
  --write-docs <file>    rewrite the check list between ${DOCS_START} and ${DOCS_END} in <file>
  --version, --help

Progress: one line per section on stderr as its last check finishes. If the hub stops answering (a
request refused, reset or timed out, and a probe of its well-known document gets no answer either),
the run stops: the checks it could not run or finish are reported as "error", with the cause.

Exit code:
  0  no SHALL check failed (with --strict: no check failed)
  1  a SHALL check failed (with --strict: any check failed): NOT CONFORMANT
  2  usage error, or the kit itself broke
  3  INCOMPLETE: the hub stopped answering during the run (checks reported as "error")
`;

function list(values: string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean);
}

function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer, got "${v}"`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      "hub-url": { type: "string" },
      token: { type: "string" },
      "token-url": { type: "string" },
      "client-id": { type: "string" },
      "client-secret": { type: "string" },
      topic: { type: "string" },
      out: { type: "string" },
      "report-dir": { type: "string" },
      skip: { type: "string", multiple: true },
      only: { type: "string", multiple: true },
      check: { type: "string", multiple: true },
      timeout: { type: "string" },
      wait: { type: "string" },
      "quiet-period": { type: "string" },
      concurrency: { type: "string" },
      strict: { type: "boolean" },
      "no-color": { type: "boolean" },
      list: { type: "boolean" },
      "write-docs": { type: "string" },
      version: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${KIT_VERSION}\n`);
    return 0;
  }
  const only = list(values.only);
  const unknown = only.filter((s) => !(SECTIONS as readonly string[]).includes(s));
  if (unknown.length > 0) throw new Error(`unknown section(s) ${unknown.join(", ")}; sections: ${SECTIONS.join(", ")}`);
  const ids = list(values.check);
  const skip = list(values.skip);
  const unknownIds = [...ids, ...skip].filter((id) => !ALL_CHECKS.some((c) => c.id === id));
  if (unknownIds.length > 0) throw new Error(`unknown check(s) ${unknownIds.join(", ")} (see --list)`);
  if (values.out && values["report-dir"] && resolve(values.out) !== resolve(values["report-dir"])) {
    throw new Error("--out and --report-dir name the same thing: give one");
  }
  if (values["write-docs"]) {
    const file = resolve(values["write-docs"]);
    await writeFile(file, replaceDocsBlock(await readFile(file, "utf8"), renderCheckList(ALL_CHECKS)));
    process.stdout.write(`Wrote the list of ${ALL_CHECKS.length} checks to ${file}\n`);
    return 0;
  }
  if (values.list) {
    process.stdout.write(`${renderCheckList(selectChecks({ only: only as Section[], ids }))}\n`);
    return 0;
  }
  const hubUrl = values["hub-url"];
  if (!hubUrl) throw new Error("--hub-url is required");
  new URL(hubUrl); // throws on a malformed URL
  if (values.token && values["token-url"]) throw new Error("give --token or --token-url, not both");

  const color = !values["no-color"] && process.stdout.isTTY === true && !process.env.NO_COLOR;
  const selected = selectChecks({ only: only as Section[], ids });
  process.stderr.write(`Running ${selected.length} checks against ${hubUrl} …\n`);
  // Node 22+ has a global WebSocket; Node 20 does not, and gets the ws package's (same event API).
  const webSocket = (globalThis.WebSocket ?? (await import("ws")).WebSocket) as unknown as WebSocketConstructor;
  const report = await runConformance({
    hubUrl,
    token: values.token,
    tokenUrl: values["token-url"],
    clientId: values["client-id"],
    clientSecret: values["client-secret"],
    topic: values.topic,
    timeoutMs: int("timeout", values.timeout),
    waitMs: int("wait", values.wait),
    quietMs: int("quiet-period", values["quiet-period"]),
    concurrency: int("concurrency", values.concurrency),
    only: only as Section[],
    ids,
    skip,
    webSocket,
    onSection: (p) => process.stderr.write(`${renderSectionProgress(p)}\n`),
    onStop: (stop) => process.stderr.write(`${renderStop(stop)}\n`),
  });
  process.stdout.write(`${renderTable(report, { color, width: process.stdout.columns })}\n`);

  // Never a folder in the current directory unasked: a fresh one under the OS temp dir by default.
  const out = values.out ?? values["report-dir"];
  const dir = out ? resolve(out) : await mkdtemp(join(tmpdir(), "fhircast-conformance-"));
  await mkdir(dir, { recursive: true });
  const jsonPath = join(dir, "conformance-report.json");
  const mdPath = join(dir, "conformance-report.md");
  await writeFile(jsonPath, renderJson(report));
  await writeFile(mdPath, renderMarkdown(report));
  process.stdout.write(`Reports: ${jsonPath}\n         ${mdPath}\n`);
  const v = verdict(report);
  if (v.kind === "incomplete") return EXIT.incomplete;
  const failed = values.strict ? report.summary.fail : report.summary.requiredFailures;
  return failed > 0 ? EXIT["not-conformant"] : EXIT.conformant;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`fhircast-conformance: ${(e as Error).message}\n\n${USAGE}`);
    process.exit(EXIT.usage);
  },
);
