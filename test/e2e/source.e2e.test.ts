// Checks on the source tree itself, in Node (they read files): the settings table (src/settings.ts)
// against wrangler.toml and docs/operations.md, and the import graph of src/ (no cycle; the client
// and the FHIRcast model depend on nothing else, docs/decisions.md "One FHIRcast model").
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
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

/** Every import specifier of a file, type-only ones included: `import … from`, `export … from`, `import("…")`. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["']([^"']+)["']/gm)].map((m) => m[1]!);
}

/** The bare (package or `node:`) imports of a file. */
function bareImports(file: string): string[] {
  return specifiers(file).filter((spec) => !/^\.{1,2}\//.test(spec));
}

/** The relative imports of a file, resolved to files under src/. */
function imports(file: string): string[] {
  const specs = specifiers(file).filter((spec) => /^\.{1,2}\//.test(spec));
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

/** Every module reachable from `entry` through relative imports (type-only ones included), with the edge that reached it. */
function reachable(entry: string): Map<string, string | undefined> {
  const from = new Map<string, string | undefined>([[entry, undefined]]);
  const queue = [entry];
  for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
    for (const g of imports(f)) {
      if (!from.has(g)) {
        from.set(g, f);
        queue.push(g);
      }
    }
  }
  return from;
}

const under = (file: string, ...dirs: string[]) => dirs.some((d) => file.startsWith(join(SRC, d) + sep));

describe("the subscriber client and the FHIRcast model (docs/decisions.md \"One FHIRcast model\")", () => {
  const CLIENT = join(SRC, "client", "index.ts");

  it("the client reaches only src/client/ and src/fhircast/, and imports no package", () => {
    const modules = reachable(CLIENT);
    expect(modules.size).toBeGreaterThan(5);
    const offending: string[] = [];
    for (const [file, via] of modules) {
      const edge = `${via ? relative(SRC, via) : "(entry)"} → ${relative(SRC, file)}`;
      if (!under(file, "client", "fhircast")) offending.push(`${edge}: outside src/client/ and src/fhircast/`);
      for (const spec of bareImports(file)) offending.push(`${relative(SRC, file)} → "${spec}": a package import`);
    }
    expect(offending).toEqual([]);
  });

  it("src/fhircast/ imports nothing outside itself", () => {
    const files = sources(join(SRC, "fhircast"));
    expect(files.length).toBeGreaterThan(3);
    const offending: string[] = [];
    for (const file of files) {
      for (const g of imports(file)) if (!under(g, "fhircast")) offending.push(`${relative(SRC, file)} → ${relative(SRC, g)}`);
      for (const spec of bareImports(file)) offending.push(`${relative(SRC, file)} → "${spec}"`);
    }
    expect(offending).toEqual([]);
  });

  it("the client's bundle (esbuild, minified) includes nothing from node_modules", async () => {
    const result = await build({
      absWorkingDir: ROOT,
      entryPoints: ["src/client/index.ts"],
      bundle: true,
      format: "esm",
      minify: true,
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs).toContain("src/client/index.ts");
    // One line per package, with how many of its files were bundled.
    const packages = new Map<string, number>();
    for (const i of inputs) {
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(i);
      if (m) packages.set(m[1]!, (packages.get(m[1]!) ?? 0) + 1);
    }
    expect([...packages].map(([p, n]) => `${p} (${n} files)`)).toEqual([]);
  });
});
