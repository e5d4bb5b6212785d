/**
 * Shared benchmark helpers: latency percentiles, a measuring loop with warmup and concurrency,
 * the suite contract, table formatting and machine CPU. All times are in milliseconds.
 */
import { readFileSync } from "node:fs";

/** What every suite receives. */
export interface BenchContext {
  /** `--quick`: fewer iterations, for a smoke run. */
  readonly quick: boolean;
  /** Every parsed flag, including ones only a particular suite knows (`--flag` or `--flag=value`). */
  readonly flags: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;
  /** Progress output (to stderr, so stdout stays the results). */
  log(line: string): void;
}

/** One suite: `bench/suites/<file>.ts` default-exports one of these. */
export interface Suite {
  readonly name: string;
  readonly description?: string;
  run(ctx: BenchContext): Promise<SuiteResult>;
}

export interface SuiteResult {
  /** Timed cases by name, printed as table rows. */
  readonly measurements: Readonly<Record<string, Measurement>>;
  /** Derived figures (ratios, sizes, settings), printed under the table. */
  readonly derived?: Readonly<Record<string, number | string>>;
}

export interface Measurement {
  readonly iterations: number;
  readonly concurrency: number;
  readonly p50: number;
  readonly p99: number;
  readonly mean: number;
  readonly min: number;
  readonly max: number;
  /** Completed calls per second of wall time (all workers together). */
  readonly opsPerSec: number;
}

export interface MeasureOptions {
  readonly iterations: number;
  /** Untimed calls first (JIT, connection pools, caches); default: none. */
  readonly warmup?: number;
  /** Calls in flight at once; default 1 (sequential). */
  readonly concurrency?: number;
}

/** The `p`th percentile (0–100) by nearest rank; `values` need not be sorted. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  if (p < 0 || p > 100) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

async function drive(fn: () => Promise<unknown>, count: number, concurrency: number, times?: number[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      const started = performance.now();
      await fn();
      times?.push(performance.now() - started);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
}

/** One timed run: every call's duration and the wall time of the whole run, in ms. */
export interface Timed {
  readonly times: readonly number[];
  readonly wallMs: number;
}

/** Calls `fn` `iterations` times, `concurrency` at once, timing each call and the whole run. */
export async function timeCalls(fn: () => Promise<unknown>, iterations: number, concurrency = 1): Promise<Timed> {
  const times: number[] = [];
  const started = performance.now();
  await drive(fn, iterations, concurrency, times);
  return { times, wallMs: performance.now() - started };
}

/** Percentiles and throughput of one or more timed runs (their calls pooled, their walls added). */
export function summarize(runs: readonly Timed[], concurrency: number): Measurement {
  const times = runs.flatMap((run) => run.times);
  const wall = runs.reduce((total, run) => total + run.wallMs, 0);
  const sum = times.reduce((total, time) => total + time, 0);
  // Microsecond precision is all a JavaScript timer loop can honestly claim.
  const round = (value: number) => Math.round(value * 1000) / 1000;
  return {
    iterations: times.length,
    concurrency,
    p50: round(percentile(times, 50)),
    p99: round(percentile(times, 99)),
    mean: round(sum / times.length),
    min: round(Math.min(...times)),
    max: round(Math.max(...times)),
    opsPerSec: Math.round((times.length / wall) * 1000),
  };
}

/** Runs `fn` `warmup` times untimed, then `iterations` times timed, `concurrency` at once. */
export async function measure(fn: () => Promise<unknown>, options: MeasureOptions): Promise<Measurement> {
  const concurrency = options.concurrency ?? 1;
  if (options.warmup) await drive(fn, options.warmup, concurrency);
  return summarize([await timeCalls(fn, options.iterations, concurrency)], concurrency);
}

/**
 * Measures several cases in alternating rounds (A B C A B C …) after warming each, so drift on a
 * shared machine (other work starting or stopping) hits every case alike rather than whichever
 * ran last. Each case is a runner that performs `iterations` calls `concurrency` at once.
 */
export async function measureAlternating(
  cases: Readonly<Record<string, (iterations: number, concurrency: number) => Promise<Timed>>>,
  options: MeasureOptions & { readonly rounds: number },
): Promise<Record<string, Measurement>> {
  const concurrency = options.concurrency ?? 1;
  const names = Object.keys(cases);
  const runs = new Map<string, Timed[]>(names.map((name) => [name, []]));
  if (options.warmup) for (const name of names) await cases[name]?.(options.warmup, concurrency);
  const perRound = Math.max(1, Math.round(options.iterations / options.rounds));
  for (let round = 0; round < options.rounds; round += 1) {
    for (const name of names)
      runs.get(name)?.push(await (cases[name] as NonNullable<(typeof cases)[string]>)(perRound, concurrency));
  }
  return Object.fromEntries(names.map((name) => [name, summarize(runs.get(name) ?? [], concurrency)]));
}

/** A ratio rounded for reading: 2 decimals. */
export function ratio(numerator: number, denominator: number): number {
  return Math.round((numerator / denominator) * 100) / 100;
}

/** Formats a duration in ms with sensible precision. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value < 1) return value.toFixed(3);
  if (value < 100) return value.toFixed(2);
  return value.toFixed(0);
}

/** Left-aligns the first column, right-aligns the rest, with a rule under the header. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((width) => "-".repeat(width)).join("  "), ...rows.map(line)].join("\n");
}

/**
 * A suite flag's raw value: `--name=value` arrives in ctx.flags, while `--name value` leaves the
 * value in argv (the runner parses flags it does not know as booleans).
 */
export function flagValue(ctx: BenchContext, name: string): string | undefined {
  const raw = ctx.flags[name];
  let value: unknown = Array.isArray(raw) ? raw.at(-1) : raw;
  if (value === true) {
    const index = process.argv.lastIndexOf(`--${name}`);
    value = index >= 0 ? process.argv[index + 1] : undefined;
  }
  return value === undefined || value === false ? undefined : String(value);
}

/** A positive whole-number flag (`1_000_000` allowed), or undefined when absent. */
export function positiveIntFlag(ctx: BenchContext, name: string): number | undefined {
  const value = flagValue(ctx, name);
  if (value === undefined) return undefined;
  const n = Number(value.replaceAll("_", ""));
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive whole number, got ${value}`);
  return n;
}

/** Linux reports /proc/stat in USER_HZ ticks, 100 per second on every mainstream kernel. */
export const MS_PER_TICK = 10;

/** Busy and total CPU time of the whole machine (every process, not only ours), in ticks; Linux only. */
export function machineCpu(): { busy: number; total: number } | undefined {
  try {
    const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    const total = fields.reduce((a, b) => a + b, 0);
    return total > 0 ? { busy: total - idle, total } : undefined;
  } catch {
    return undefined;
  }
}
