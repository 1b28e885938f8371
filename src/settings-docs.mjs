#!/usr/bin/env node
// `npm run docs:settings`: writes the settings table of docs/operations.md "Settings" from the table
// in src/settings.ts, between its marker comments. test/e2e/source.e2e.test.ts fails when they differ.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { settingsMarkdown, withSettingsBlock } from "./settings.ts";

const file = resolve(dirname(fileURLToPath(import.meta.url)), "..", "docs", "operations.md");
const next = withSettingsBlock(readFileSync(file, "utf8"), settingsMarkdown());
if (next === undefined) {
  console.error(`docs:settings: ${file} has no settings markers`);
  process.exit(1);
}
writeFileSync(file, next);
console.log(`docs:settings: wrote ${file}`);
