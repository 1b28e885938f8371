// Checks on the source tree itself, in Node (they read files): the settings table (src/settings.ts)
// against wrangler.toml and docs/operations.md, and the import graph of src/ (no cycle).
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { DOCS_END, DOCS_START, type Setting, SETTINGS, settingsMarkdown } from "../../src/settings.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SRC = join(ROOT, "src");

describe("the settings table (src/settings.ts)", () => {
  it("holds every [vars] entry of wrangler.toml, top level and [env.production.vars], each parses, and no secret is a var", () => {
    for (const env of [undefined, "production"]) {
      const { vars } = unstable_readConfig({ config: join(ROOT, "wrangler.toml"), env }, { hideWarnings: true }) as unknown as { vars: Record<string, unknown> };
      expect(Object.keys(vars).length).toBeGreaterThan(10);
      for (const name of Object.keys(vars)) {
        expect(Object.keys(SETTINGS), `${name} ([vars]${env ? ` of ${env}` : ""}) is in src/settings.ts`).toContain(name);
        const row = (SETTINGS as Record<string, Setting<unknown>>)[name]!;
        expect(row.secret, `${name} is a secret, never a var`).toBeUndefined();
        expect(() => row.parse(String(vars[name]), name), `${name} = "${String(vars[name])}" parses`).not.toThrow();
      }
    }
  });

  it("documents every setting: a default and a meaning", () => {
    for (const [name, s] of Object.entries(SETTINGS)) {
      expect(s.default.trim(), `${name} default`).not.toBe("");
      expect(s.doc.trim().length, `${name} doc`).toBeGreaterThan(10);
    }
  });

  it("docs/operations.md \"Settings\" is the table generated from it (npm run docs:settings)", () => {
    const doc = readFileSync(join(ROOT, "docs", "operations.md"), "utf8");
    const start = doc.indexOf(DOCS_START);
    const end = doc.indexOf(DOCS_END);
    expect(start, "the settings markers in docs/operations.md").toBeGreaterThan(0);
    expect(end).toBeGreaterThan(start);
    expect(doc.slice(start + DOCS_START.length, end).trim(), "run npm run docs:settings").toBe(settingsMarkdown());
  });
});

/** Every .ts and .mjs file under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.(ts|mjs)$/.test(e.name) ? [join(dir, e.name)] : []);
}

/** The relative imports of a file, type-only ones included: `import … from`, `export … from`, `import("…")`. */
function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm)].map((m) => m[1]!);
  return specs.map((spec) => {
    const base = resolve(dirname(file), spec);
    for (const candidate of [base, `${base}.ts`, join(base, "index.ts")]) {
      try {
        if (readdirSync(dirname(candidate)).includes(candidate.slice(dirname(candidate).length + 1)) && /\.(ts|mjs|js)$/.test(candidate)) return candidate;
      } catch {
        // not a directory
      }
    }
    return base;
  }).filter((f) => f.startsWith(SRC) && /\.(ts|mjs)$/.test(f));
}

describe("imports in src/", () => {
  it("have no cycle (type-only imports included: a cycle of types is a cycle of dependencies)", () => {
    const graph = new Map(sources(SRC).map((f) => [f, imports(f)]));
    expect(graph.size).toBeGreaterThan(50);
    expect([...graph.get(join(SRC, "worker.ts"))!].length).toBeGreaterThan(5); // the parser sees imports
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const path: string[] = [];
    const visit = (f: string) => {
      state.set(f, "open");
      path.push(f);
      for (const g of graph.get(f) ?? []) {
        if (state.get(g) === "open") cycles.push([...path.slice(path.indexOf(g)), g].map((p) => relative(SRC, p)).join(" → "));
        else if (!state.has(g)) visit(g);
      }
      path.pop();
      state.set(f, "done");
    };
    for (const f of graph.keys()) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });
});
