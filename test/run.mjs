// `npm test`: the type checks (`npm run typecheck`) and the test run (`vitest run`, with the arguments
// given: `npm test -- --project workers`) at once, instead of one after the other: the four tsc runs
// (TypeScript 7, the native compiler: ~8 s of CPU; TypeScript 5 took ~30 s) would delay every test.
// tsc runs at a lower CPU priority (nice), so the tests, some of which measure time, keep theirs. Fails when either fails; prints the type checks'
// output after the tests' (not interleaved) and how long each took.
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(ROOT, "node_modules", ".bin");
const started = performance.now();
const seconds = () => ((performance.now() - started) / 1000).toFixed(0);

/** Runs a command; resolves with its exit code (1 if it could not start or ended by a signal) and the time it ended. */
function run(command, args, { capture = false } = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", capture ? "pipe" : "inherit", capture ? "pipe" : "inherit"] });
    let output = "";
    if (capture) {
      child.stdout.on("data", (d) => (output += d));
      child.stderr.on("data", (d) => (output += d));
    }
    child.once("error", (e) => resolve({ code: 1, output: `${output}${command}: ${e.message}\n`, at: seconds() }));
    child.once("exit", (code) => resolve({ code: code ?? 1, output, at: seconds() }));
  });
}

// wrangler's 15 MB CLI is compiled afresh by every `wrangler dev` the e2e files start (~20): Node's
// compile cache (Node >= 22; older ones ignore it) keeps the compiled code between them.
process.env.NODE_COMPILE_CACHE ??= join(tmpdir(), "fhircast-test-node-compile-cache");

const typecheck = run("nice", ["-n", "10", "npm", "run", "--silent", "typecheck"], { capture: true });
const tests = await run(join(BIN, "vitest"), ["run", ...process.argv.slice(2)]);
const types = await typecheck;

if (types.output.trim()) process.stdout.write(`\n--- npm run typecheck\n${types.output}`);
console.log(`\nnpm test: ${seconds()} s; vitest ${tests.code === 0 ? "passed" : "FAILED"} at ${tests.at} s, typecheck ${types.code === 0 ? "passed" : "FAILED"} at ${types.at} s`);
process.exit(tests.code !== 0 ? tests.code : types.code);
