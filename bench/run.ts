/**
 * Benchmark runner: `npx tsx bench/run.ts [--only NAME[,NAME]] [--quick] [suite flags…]`.
 *
 * Runs every suite in bench/suites/ (or the ones named), prints a table per suite and writes
 * bench/results/latest.json after each suite (suites not run keep their earlier results). Unknown flags are kept for the suites that read them.
 */
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { type BenchContext, formatTable, ms, type Suite, type SuiteResult } from "./lib.ts";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const SUITES_DIR = join(HERE, "suites");
const RESULTS_DIR = join(HERE, "results");

const USAGE = `usage: npx tsx bench/run.ts [--only NAME[,NAME…]] [--quick] [--list] [suite flags…]

  --only NAME   run only the named suite(s); repeat or separate with commas
  --quick       fewer iterations (a smoke run, numbers are noisy)
  --list        list the suites and exit
`;

function isSuite(value: unknown): value is Suite {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Suite).name === "string" &&
    typeof (value as Suite).run === "function"
  );
}

/** Every `bench/suites/*.ts` default-exports a suite. */
async function loadSuites(): Promise<Suite[]> {
  const files = (await readdir(SUITES_DIR)).filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts")).sort();
  const suites: Suite[] = [];
  for (const file of files) {
    const module = (await import(pathToFileURL(join(SUITES_DIR, file)).href)) as { default?: unknown };
    if (!isSuite(module.default)) throw new Error(`bench/suites/${file} must default-export { name, run(ctx) }`);
    suites.push(module.default);
  }
  return suites;
}

function printResult(suite: Suite, result: SuiteResult): void {
  const rows = Object.entries(result.measurements).map(([name, m]) => [
    name,
    String(m.iterations),
    String(m.concurrency),
    ms(m.p50),
    ms(m.p99),
    ms(m.mean),
    m.opsPerSec.toFixed(0),
  ]);
  console.log(`\n== ${suite.name}${suite.description ? ` — ${suite.description}` : ""}`);
  console.log(formatTable(["case", "iter", "conc", "p50 ms", "p99 ms", "mean ms", "ops/s"], rows));
  const derived = Object.entries(result.derived ?? {});
  if (derived.length > 0) {
    console.log("");
    const width = Math.max(...derived.map(([key]) => key.length));
    for (const [key, value] of derived) console.log(`${key.padEnd(width)}  ${value}`);
  }
}

/**
 * Writes `report`, keeping the suites of the file's earlier runs that this run did not run (each
 * suite carries its own `date`): `--only` runs of different suites add up in one file.
 */
async function writeResults(out: string, report: { suites: Record<string, unknown> }): Promise<void> {
  let earlier: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(await readFile(out, "utf8")) as { suites?: Record<string, unknown> };
    earlier = parsed.suites ?? {};
  } catch {
    // No earlier file, or not ours: start afresh.
  }
  const merged = { ...report, suites: { ...earlier, ...report.suites } };
  await writeFile(out, `${JSON.stringify(merged, null, 2)}\n`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      only: { type: "string", multiple: true },
      quick: { type: "boolean", default: false },
      list: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: false,
    allowPositionals: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const suites = await loadSuites();
  if (values.list) {
    for (const suite of suites) console.log(`${suite.name}${suite.description ? `  ${suite.description}` : ""}`);
    return 0;
  }
  const only = (Array.isArray(values.only) ? values.only : [])
    .flatMap((value) => (typeof value === "string" ? value.split(",") : []))
    .map((name) => name.trim())
    .filter(Boolean);
  const unknown = only.filter((name) => !suites.some((suite) => suite.name === name));
  if (unknown.length > 0) {
    console.error(`unknown suite(s): ${unknown.join(", ")}; known: ${suites.map((suite) => suite.name).join(", ")}`);
    return 2;
  }
  const selected = only.length > 0 ? suites.filter((suite) => only.includes(suite.name)) : suites;
  const quick = values.quick === true;
  const ctx: BenchContext = {
    quick,
    flags: values,
    log: (line) => process.stderr.write(`  ${line}\n`),
  };

  const cpuList = cpus();
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpu: cpuList[0]?.model.trim() ?? "unknown",
    cores: cpuList.length,
    quick,
    suites: {} as Record<string, unknown>,
  };
  console.log(`node ${report.node}, ${report.cpu} × ${report.cores}${quick ? ", quick mode" : ""}`);

  await mkdir(RESULTS_DIR, { recursive: true });
  const out = join(RESULTS_DIR, "latest.json");
  let failed = 0;
  for (const suite of selected) {
    process.stderr.write(`running ${suite.name}…\n`);
    const started = performance.now();
    try {
      const result = await suite.run(ctx);
      printResult(suite, result);
      report.suites[suite.name] = {
        ...result,
        date: new Date().toISOString(),
        durationMs: Math.round(performance.now() - started),
      };
    } catch (error) {
      failed += 1;
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      console.error(`\n== ${suite.name} FAILED\n${message}`);
      report.suites[suite.name] = { error: error instanceof Error ? error.message : String(error) };
    }
    // Written after every suite, so a long run stopped midway keeps what it measured.
    await writeResults(out, report);
  }

  console.log(`\nwrote ${out}`);
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
