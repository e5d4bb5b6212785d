/**
 * `tenantry migrate …`: fleet schema rollouts through the admin API (src/control/fleet/).
 *
 * `run`, `rollback` and `resume` wait for the run to finish by default, polling
 * GET /v1/migrations/runs/{id}: a one-line progress bar redrawn in place on a terminal, a plain line
 * every few seconds otherwise, nothing but the final run JSON with `--json`. Exit code 0 when the
 * run completed with no failed tenant, 1 when it halted, was cancelled or left failed or drifted
 * tenants, 2 for a usage error (thrown as the caller's usage error).
 */
import { parseArgs } from "node:util";
import type { FleetStatus, RunProgress } from "../control/fleet/runs.ts";
import { type AdminClient, UnreachableError } from "./admin-client.ts";
import { table } from "./format.ts";

export interface MigrateCommandDeps {
  /** The admin API client (token minted or read from the environment). */
  readonly client: () => Promise<AdminClient>;
  /** Builds the error the caller reports as a usage error (exit code 2). */
  readonly usageError: (message: string) => Error;
}

const POLL_MS = 500;
/** Consecutive unreachable polls tolerated while waiting (a wrangler reload, a blip). */
const MAX_POLL_ERRORS = 10;
/** Without a terminal: one progress line at most this often, and at least every HEARTBEAT_MS. */
const PLAIN_EVERY_MS = 2_000;
const HEARTBEAT_MS = 10_000;
const BAR_WIDTH = 24;

const RUN_OPTIONS = {
  json: { type: "boolean", default: false },
  target: { type: "string" },
  steps: { type: "string" },
  canary: { type: "string" },
  "canary-tenant": { type: "string", multiple: true },
  wave: { type: "string" },
  concurrency: { type: "string" },
  "max-failures": { type: "string" },
  "dry-run": { type: "boolean", default: false },
  force: { type: "boolean", default: false },
  "no-wait": { type: "boolean", default: false },
} as const;

type Counts = RunProgress["counts"];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Tenants with a final outcome in this run. */
const finished = (c: Counts) => c.done + c.failed + c.drift + c.skipped;
/** Tenants still to do: not started, queued or in progress. */
const remaining = (c: Counts) => c.pending + c.queued + c.running;
const failedCount = (c: Counts) => c.failed + c.drift;

/** 0: completed with every tenant done; 1: halted, cancelled, or failed/drifted tenants. */
export function exitCodeFor(run: RunProgress): number {
  return run.status === "completed" && failedCount(run.counts) === 0 ? 0 : 1;
}

function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "?";
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** "apply → 0003_x", "rollback 1 step", with "(dry run)". */
function describe(run: RunProgress): string {
  const what =
    run.kind === "apply"
      ? `apply → ${run.target ?? "latest"}`
      : `rollback ${run.steps ?? 1} step${run.steps === 1 ? "" : "s"}`;
  return run.dryRun ? `${what} (dry run)` : what;
}

function countsLine(c: Counts): string {
  const parts = [`${c.done} done`, `${c.failed} failed`];
  if (c.drift) parts.push(`${c.drift} drift`);
  if (c.skipped) parts.push(`${c.skipped} skipped`);
  if (remaining(c)) parts.push(`${remaining(c)} pending`);
  return parts.join(", ");
}

function elapsed(run: RunProgress): string {
  const started = Date.parse(run.createdAt);
  const ended = run.finishedAt ? Date.parse(run.finishedAt) : Date.now();
  return duration(ended - started);
}

function printFailures(run: RunProgress, write: (line: string) => void): void {
  if (run.failures.length === 0) return;
  write("");
  write(
    table([
      ["FAILED TENANT", "STATUS", "MIGRATION", "ATTEMPTS", "ERROR"],
      ...run.failures.map((f) => [f.slug, f.status, f.migration ?? "-", String(f.attempts), f.error ?? "-"]),
    ]),
  );
  const more = failedCount(run.counts) - run.failures.length;
  if (more > 0) write(`… and ${more} more`);
}

/** The human summary of a run: header, counts, halt reason, failures and what to do next. */
export function printRun(run: RunProgress, write: (line: string) => void = console.log): void {
  write(`run ${run.id}  ${describe(run)}  ${run.status}`);
  write(
    table([
      ["tenants", `${run.total}: ${countsLine(run.counts)}`],
      ["phase", `${Math.min(run.phase + 1, Math.max(run.phases, 1))}/${Math.max(run.phases, 1)}`],
      ["concurrency", String(run.concurrency)],
      ["max failures", String(run.maxFailures)],
      ["started", run.createdAt],
      [
        "finished",
        run.finishedAt
          ? `${run.finishedAt} (${elapsed(run)})`
          : run.status === "running"
            ? `- (running for ${elapsed(run)})`
            : "-",
      ],
      ...(run.haltReason ? [["halted", run.haltReason]] : []),
    ]),
  );
  printFailures(run, write);
  const drops = run.drops ?? [];
  if (drops.length > 0) {
    const how = run.force ? "--force: no export first" : "each tenant is exported first, or refused";
    write(`\n${run.dryRun ? "would drop" : "drops"} (${how}): ${drops.join(", ")}`);
  }
  if (run.dryRun && run.status === "completed" && failedCount(run.counts) === 0) {
    write("\ndry run: every tenant ran the change inside a transaction that was rolled back; nothing changed");
  }
  if (run.counts.drift > 0) {
    write(
      "\ndrift: a tenant's ledger (tenantry.migrations) has a checksum that differs from the bundle; it is never fixed automatically: inspect that database by hand",
    );
  }
  if (run.status === "halted" || (run.status === "running" && failedCount(run.counts) > 0)) {
    write(`\nfix the cause, then: tenantry migrate resume ${run.id}   (or: tenantry migrate cancel ${run.id})`);
  } else if (run.status === "completed" && failedCount(run.counts) > 0) {
    write("\nthe run completed with failed tenants: fix the cause and start a new run (tenantry migrate run)");
  }
}

/** One progress line: bar, counts, rate and ETA. */
export function progressLine(run: RunProgress, rate: number): string {
  const c = run.counts;
  const total = Math.max(run.total, 1);
  const filled = Math.round((finished(c) / total) * BAR_WIDTH);
  const bar = `${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}`;
  const left = remaining(c);
  const eta = left === 0 ? "0s" : rate > 0 ? duration((left / rate) * 1000) : "?";
  const parts = [
    `[${bar}] ${finished(c)}/${run.total}`,
    `done ${c.done}`,
    `failed ${failedCount(c)}`,
    `pending ${left}${c.running + c.queued ? ` (${c.running + c.queued} in flight)` : ""}`,
    `${rate.toFixed(1)} tenants/s`,
    `ETA ${eta}`,
    `phase ${Math.min(run.phase + 1, Math.max(run.phases, 1))}/${Math.max(run.phases, 1)}`,
  ];
  return parts.join(" · ");
}

interface WaitOptions {
  readonly json: boolean;
}

/** Polls the run until it is no longer running, showing progress; resolves with its last state. */
async function waitForRun(api: AdminClient, initial: RunProgress, options: WaitOptions): Promise<RunProgress> {
  const tty = Boolean(process.stdout.isTTY) && !options.json;
  const plain = !tty && !options.json;
  const firstSeen = Date.now();
  const firstFinished = finished(initial.counts);
  let run = initial;
  let lastPlain = 0;
  let lastPlainText = "";
  let errors = 0;

  const rate = () => {
    const seconds = (Date.now() - firstSeen) / 1000;
    return seconds > 0 ? (finished(run.counts) - firstFinished) / seconds : 0;
  };
  const draw = (final: boolean) => {
    const line = `${run.id} ${describe(run)} ${progressLine(run, rate())}`;
    if (tty) {
      const width = process.stdout.columns ? process.stdout.columns - 1 : line.length;
      process.stdout.write(`\r\x1b[K${line.slice(0, width)}${final ? "\n" : ""}`);
    } else if (plain) {
      const now = Date.now();
      const changed = line.replace(/ · [\d.]+ tenants\/s · ETA \S+/, "") !== lastPlainText;
      if (final || (now - lastPlain >= PLAIN_EVERY_MS && changed) || now - lastPlain >= HEARTBEAT_MS) {
        console.log(line);
        lastPlain = now;
        lastPlainText = line.replace(/ · [\d.]+ tenants\/s · ETA \S+/, "");
      }
    }
  };

  // Ctrl-C stops watching, not the run: say how to get back to it.
  const onInterrupt = () => {
    if (tty) process.stdout.write("\n");
    console.error(
      `stopped watching; run ${run.id} continues: tenantry migrate show ${run.id} --wait, or tenantry migrate cancel ${run.id}`,
    );
    process.exit(130);
  };
  process.once("SIGINT", onInterrupt);
  try {
    draw(run.status !== "running");
    while (run.status === "running") {
      await sleep(POLL_MS);
      try {
        run = await api.call<RunProgress>("GET", `/v1/migrations/runs/${encodeURIComponent(run.id)}`);
        errors = 0;
      } catch (error) {
        if (!(error instanceof UnreachableError) || ++errors > MAX_POLL_ERRORS) throw error;
        continue;
      }
      draw(run.status !== "running");
    }
    return run;
  } finally {
    process.removeListener("SIGINT", onInterrupt);
  }
}

async function finish(api: AdminClient, run: RunProgress, options: { json: boolean; wait: boolean }): Promise<number> {
  if (!options.wait) {
    if (options.json) console.log(JSON.stringify(run, null, 2));
    else {
      printRun(run);
      if (run.status === "running") console.log(`\nwatch it: tenantry migrate show ${run.id} --wait`);
    }
    return run.status === "running" ? 0 : exitCodeFor(run);
  }
  const last = await waitForRun(api, run, { json: options.json });
  if (options.json) console.log(JSON.stringify(last, null, 2));
  else {
    console.log("");
    printRun(last);
  }
  return exitCodeFor(last);
}

function printStatus(status: FleetStatus): void {
  console.log(
    `latest ${status.latest ?? "(no migrations)"} · ${status.activeTenants} active tenant${status.activeTenants === 1 ? "" : "s"} · ${status.behind} behind`,
  );
  const entries = Object.entries(status.versions).sort(([a], [b]) =>
    a === "(none)" ? 1 : b === "(none)" ? -1 : a < b ? 1 : -1,
  );
  if (entries.length > 0) {
    const max = Math.max(...entries.map(([, n]) => n), 1);
    console.log("");
    console.log(
      table([
        ["VERSION", "TENANTS", ""],
        ...entries.map(([version, n]) => [
          version,
          String(n).padStart(7),
          `${"#".repeat(Math.max(1, Math.round((n / max) * 30)))}${version === status.latest ? "  latest" : ""}`,
        ]),
      ]),
    );
  }
  const run = status.lastRun;
  console.log("");
  if (!run) {
    console.log("no run yet");
  } else {
    console.log("latest run:");
    printRun(run);
  }
  if (status.behind > 0 && run?.status !== "running") {
    console.log(`\n${status.behind} tenant${status.behind === 1 ? " is" : "s are"} behind: tenantry migrate run`);
  }
}

function integer(
  values: Record<string, unknown>,
  name: string,
  min: number,
  usage: (message: string) => Error,
): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== "string" || !/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw usage(`--${name} must be a whole number ≥ ${min}`);
  }
  return n;
}

function runBody(
  kind: "apply" | "rollback",
  values: Record<string, unknown>,
  usage: (message: string) => Error,
): Record<string, unknown> {
  const canary = integer(values, "canary", 0, usage);
  const canaryTenants = values["canary-tenant"] as string[] | undefined;
  if (canary !== undefined && canaryTenants?.length) {
    throw usage("use either --canary N or --canary-tenant SLUG, not both");
  }
  const steps = integer(values, "steps", 1, usage);
  if (kind === "rollback" && steps === undefined) throw usage("migrate rollback needs --steps N");
  if (kind === "apply" && steps !== undefined) throw usage("--steps is for migrate rollback");
  if (kind === "rollback" && values.target !== undefined) throw usage("--target is for migrate run");
  if (kind === "apply" && values.force) throw usage("--force is for migrate rollback");
  const wave = integer(values, "wave", 1, usage);
  const concurrency = integer(values, "concurrency", 1, usage);
  const maxFailures = integer(values, "max-failures", 0, usage);
  return {
    kind,
    ...(typeof values.target === "string" ? { target: values.target } : {}),
    ...(steps !== undefined ? { steps } : {}),
    ...(canary !== undefined ? { canary } : {}),
    ...(canaryTenants?.length ? { canaryTenants } : {}),
    ...(wave !== undefined ? { wave } : {}),
    ...(concurrency !== undefined ? { concurrency } : {}),
    ...(maxFailures !== undefined ? { maxFailures } : {}),
    ...(values["dry-run"] ? { dryRun: true } : {}),
    ...(values.force ? { force: true } : {}),
  };
}

function runId(positionals: string[], what: string, usage: (message: string) => Error): string {
  const id = positionals[0];
  if (!id) throw usage(`migrate ${what} needs a RUN_ID (see tenantry migrate status)`);
  if (positionals.length > 1) throw usage(`migrate ${what} takes one RUN_ID`);
  return id;
}

/** `tenantry migrate <status|run|rollback|resume|cancel|show> …`; resolves with the exit code. */
export async function migrateCommand(args: string[], deps: MigrateCommandDeps): Promise<number> {
  const [sub, ...rest] = args;
  const usage = deps.usageError;
  switch (sub) {
    case "status": {
      const { values } = parseArgs({ args: rest, options: { json: { type: "boolean", default: false } } });
      const status = await (await deps.client()).call<FleetStatus>("GET", "/v1/migrations/status");
      if (values.json) console.log(JSON.stringify(status, null, 2));
      else printStatus(status);
      return 0;
    }
    case "run":
    case "rollback": {
      const { values } = parseArgs({ args: rest, options: RUN_OPTIONS });
      const body = runBody(sub === "run" ? "apply" : "rollback", values, usage);
      const api = await deps.client();
      const run = await api.call<RunProgress>("POST", "/v1/migrations/runs", body);
      if (!values.json) console.log(`started ${run.id}: ${describe(run)} across ${run.total} tenants`);
      return finish(api, run, { json: values.json, wait: !values["no-wait"] });
    }
    case "resume": {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { json: { type: "boolean", default: false }, "no-wait": { type: "boolean", default: false } },
      });
      const id = runId(positionals, "resume", usage);
      const api = await deps.client();
      const run = await api.call<RunProgress>("POST", `/v1/migrations/runs/${encodeURIComponent(id)}/resume`);
      if (!values.json) console.log(`resumed ${run.id}: ${describe(run)}, ${countsLine(run.counts)}`);
      return finish(api, run, { json: values.json, wait: !values["no-wait"] });
    }
    case "cancel": {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { json: { type: "boolean", default: false } },
      });
      const id = runId(positionals, "cancel", usage);
      const run = await (await deps.client()).call<RunProgress>(
        "POST",
        `/v1/migrations/runs/${encodeURIComponent(id)}/cancel`,
      );
      if (values.json) console.log(JSON.stringify(run, null, 2));
      else printRun(run);
      return 0;
    }
    case "show": {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { json: { type: "boolean", default: false }, wait: { type: "boolean", default: false } },
      });
      const id = runId(positionals, "show", usage);
      const api = await deps.client();
      const run = await api.call<RunProgress>("GET", `/v1/migrations/runs/${encodeURIComponent(id)}`);
      return finish(api, run, { json: values.json, wait: values.wait });
    }
    default:
      throw usage(`unknown migrate command ${JSON.stringify(sub ?? "")}`);
  }
}
