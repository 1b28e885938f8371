// Renders a report: a terminal table, Markdown, JSON, and the Markdown list of checks (docs).
import { SPEC_BASE } from "./checks/spec.ts";
import { type Check, type CheckResult, type Report, type SectionProgress, SECTIONS, SECTION_TITLES, type Status, type Stop } from "./types.ts";

const ANSI = { pass: "\x1b[32m", fail: "\x1b[31m", skip: "\x1b[33m", error: "\x1b[35m", dim: "\x1b[2m", bold: "\x1b[1m", reset: "\x1b[0m" };

const pad = (s: string, n: number) => (s.length >= n ? s : s + " ".repeat(n - s.length));

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** "the hub stopped answering during <check> (ECONNREFUSED)", or "… did not answer …" when it never did. */
export function describeStop(stop: Stop): string {
  const where = stop.check ? `the hub stopped answering during ${stop.check}` : "the hub did not answer at the start (reading the well-known document)";
  return stop.code ? `${where} (${stop.code})` : where;
}

/** The counts of a summary or section: "6 passed, 0 failed, 1 skipped" (and ", 2 errors" when any). */
function counts(s: { pass: number; fail: number; skip: number; error: number }): string {
  return `${s.pass} passed, ${s.fail} failed, ${s.skip} skipped${s.error > 0 ? `, ${s.error} error${s.error === 1 ? "" : "s"}` : ""}`;
}

/**
 * The verdict: INCOMPLETE when the hub stopped answering (whatever failed before), NOT CONFORMANT
 * when a SHALL check failed, otherwise none failed. `kind` matches the CLI's exit codes (3, 1, 0).
 */
export function verdict(report: Report): { kind: "incomplete" | "not-conformant" | "conformant"; text: string } {
  const s = report.summary;
  const failed = `${s.requiredFailures} required (SHALL) check(s) failed`;
  if (report.stopped) {
    const before = s.requiredFailures > 0 ? `; before that, ${failed}` : "";
    return { kind: "incomplete", text: `INCOMPLETE: ${describeStop(report.stopped)}; ${s.error} check(s) could not run or finish${before}` };
  }
  if (s.requiredFailures > 0) return { kind: "not-conformant", text: `${failed}: NOT CONFORMANT` };
  return { kind: "conformant", text: "No required (SHALL) check failed." };
}

/** One progress line for a finished section: "discovery        6 passed, 0 failed, 1 skipped  (1.4 s)". */
export function renderSectionProgress(p: SectionProgress): string {
  return `${pad(p.section, 16)} ${counts(p)}  (${seconds(p.durationMs)})`;
}

/** What the CLI prints the moment the run stops. */
export function renderStop(stop: Stop): string {
  return `${describeStop(stop)}: ${stop.message}\nprobe: ${stop.probe}\nthe remaining checks are not run (reported as error)`;
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** The terminal table: one line per check, the reason under each failure and skip. */
export function renderTable(report: Report, opts: { color?: boolean; width?: number } = {}): string {
  const c = (code: keyof typeof ANSI, s: string) => (opts.color ? `${ANSI[code]}${s}${ANSI.reset}` : s);
  const width = Math.max(60, opts.width ?? 100);
  const idWidth = Math.max(...report.results.map((r) => r.id.length), 10);
  const statusWidth = Math.max(...report.results.map((r) => r.status.length), 4);
  const out: string[] = [];
  out.push(c("bold", `FHIRcast 3.0.0 hub conformance — ${report.hubUrl}`));
  let section = "";
  for (const r of report.results) {
    if (r.section !== section) {
      section = r.section;
      out.push("", c("bold", SECTION_TITLES[r.section]));
    }
    const status = c(r.status, pad(r.status.toUpperCase(), statusWidth));
    const time = r.durationMs >= 1000 ? c("dim", ` ${(r.durationMs / 1000).toFixed(1)}s`) : "";
    out.push(`  ${status}  ${pad(r.level, 8)}  ${pad(r.id, idWidth)}${time}`.trimEnd());
    const detail = r.status === "pass" ? r.note : r.reason;
    const text = detail && r.cause && !detail.includes(r.cause) ? `${detail} [${r.cause}]` : detail;
    if (text) for (const l of wrap(text, width - 8)) out.push(c(r.status === "fail" || r.status === "error" ? r.status : "dim", `        ${l}`));
  }
  const s = report.summary;
  const v = verdict(report);
  out.push(
    "",
    c("bold", `${s.total} checks: ${counts(s)} in ${seconds(report.durationMs)}`),
    c(v.kind === "conformant" ? "pass" : v.kind === "incomplete" ? "error" : "fail", v.text),
  );
  if (report.stopped) out.push(c("dim", `The hub stopped answering: ${report.stopped.message}`), c("dim", `Probe: ${report.stopped.probe}`));
  return out.join("\n");
}

const ICON: Record<Status, string> = { pass: "✅ pass", fail: "❌ fail", skip: "⏭️ skip", error: "⚠️ error" };

const mdCell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

export const specLink = (r: Pick<Check, "spec">) => `[§${r.spec.section}](${SPEC_BASE}${r.spec.page}.html)`;

/** The Markdown report. */
export function renderMarkdown(report: Report): string {
  const s = report.summary;
  const out: string[] = [
    `# FHIRcast hub conformance report`,
    "",
    `- Hub: \`${report.hubUrl}\``,
    `- Run: ${report.startedAt}, ${(report.durationMs / 1000).toFixed(1)} s, fhircast-conformance ${report.version} (FHIRcast ${report.fhircastVersion})`,
    `- Result: **${counts(s)}** of ${s.total} — ${report.stopped || s.requiredFailures > 0 ? `**${verdict(report).text}**` : "no required (SHALL) check failed"}`,
    ...(report.stopped ? [`- Stopped: ${mdCell(report.stopped.message)}; probe: ${mdCell(report.stopped.probe)}`] : []),
    `- Features advertised: ${Object.entries(report.features).map(([k, v]) => `${k} ${v ? "yes" : "no"}`).join(", ")}`,
    "",
  ];
  for (const section of SECTIONS) {
    const rows = report.results.filter((r) => r.section === section);
    if (rows.length === 0) continue;
    out.push(`## ${SECTION_TITLES[section]}`, "", "| Result | Level | Check | Spec | Detail |", "|---|---|---|---|---|");
    for (const r of rows) {
      const reason = r.status === "pass" ? (r.note ?? "") : (r.reason ?? "");
      const detail = r.cause && !reason.includes(r.cause) ? `${reason} [${r.cause}]` : reason;
      out.push(`| ${ICON[r.status]} | ${r.level} | \`${r.id}\`<br>${mdCell(r.title)} | ${specLink(r)} | ${mdCell(detail)} |`);
    }
    out.push("");
  }
  return out.join("\n");
}

export function renderJson(report: Report): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** The list of checks as Markdown (docs/conformance.md). */
export function renderCheckList(checks: readonly Check[]): string {
  const out: string[] = [];
  for (const section of SECTIONS) {
    const rows = checks.filter((c) => c.section === section);
    if (rows.length === 0) continue;
    out.push(`### ${SECTION_TITLES[section]} (\`${section}\`)`, "", "| Check | Level | Spec | Verifies | Requirement | Needs |", "|---|---|---|---|---|---|");
    for (const c of rows) {
      out.push(`| \`${c.id}\` | ${c.level} | ${specLink(c)} | ${mdCell(c.title)} | ${mdCell(c.requirement)} | ${(c.requires ?? []).join(", ")} |`);
    }
    out.push("");
  }
  return out.join("\n");
}

export function resultLine(r: CheckResult): string {
  return `${r.status.toUpperCase()} ${r.id}${r.reason ? `: ${r.reason}` : ""}`;
}

export const DOCS_START = "<!-- checks:start (generated by npm run conformance:docs) -->";
export const DOCS_END = "<!-- checks:end -->";

/** Replaces the generated block of a Markdown document with `block`. */
export function replaceDocsBlock(doc: string, block: string): string {
  const start = doc.indexOf(DOCS_START);
  const end = doc.indexOf(DOCS_END);
  if (start < 0 || end < start) throw new Error(`the document has no ${DOCS_START} … ${DOCS_END} block`);
  return `${doc.slice(0, start + DOCS_START.length)}\n\n${block.trim()}\n\n${doc.slice(end)}`;
}

/** The generated block of a Markdown document, as replaceDocsBlock wrote it. */
export function docsBlock(doc: string): string | undefined {
  const start = doc.indexOf(DOCS_START);
  const end = doc.indexOf(DOCS_END);
  return start < 0 || end < start ? undefined : doc.slice(start + DOCS_START.length, end).trim();
}
