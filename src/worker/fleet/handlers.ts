/**
 * Fleet job entry points. `scheduled()` only finds work: it dispatches queued work of running
 * migration runs (sendBatch, per tenant) and reconciles KV with the control plane. `queue()` does
 * the work: one tenant per message, a few in parallel within a batch. A message is acknowledged once
 * its outcome is recorded (done, failed or drift are all recorded outcomes); it is retried with
 * backoff only when the control plane itself could not be reached, and lands in the dead-letter
 * queue after the configured retries.
 */

import { pollDomains } from "../../control/domains/poll.ts";
import type { DeleteExportDeps } from "../../control/export/delete-steps.ts";
import {
  type NightlyMessage,
  type NightlyReport,
  nextNightlyMessage,
  scheduleNightlyExports,
} from "../../control/export/nightly.ts";
import { DEFAULT_FINAL_RETENTION_DAYS, expireFinalExports } from "../../control/export/purge.ts";
import { type ExportMessage, inlineExport, runExport } from "../../control/export/service.ts";
import { applyTenant } from "../../control/fleet/consumer.ts";
import { dispatch, type FleetDeps, type MigrateMessage } from "../../control/fleet/dispatch.ts";
import { nextMessage, type ReconcileMessage, reconcile } from "../../control/tenants/reconcile.ts";
import { controlDepsFrom } from "../admin/deps.ts";
import { createLogger, type Logger } from "../http/log.ts";
import { configureEndpoint } from "../tenant-db/middleware.ts";

/**
/**
 * Operations the cron tick's reconcile step may spend: the tick also polls domains (≤ 100 KV writes,
 * ~100 control queries, ≤ 400 Cloudflare requests: domains/poll.ts) and dispatches fleet work, all
 * under one invocation's 1,000 subrequests.
 */
const CRON_RECONCILE_BUDGET = 250;

/**
 * Tenants migrated at once inside one consumer batch (each is a handful of HTTP requests, one
 * connection at a time, so 4 stay under the 6 connections of an invocation). wrangler.toml's
 * max_batch_size matches it.
 */
const BATCH_PARALLELISM = 4;
/** Tries at the dispatch that ends a batch. */
const DISPATCH_ATTEMPTS = 2;

/** A whole number ≥ 0 from a var, or undefined when unset or not one (the default then applies). */
const wholeVar = (value: string | undefined) => {
  if (value === undefined || value.trim() === "") return undefined;
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
};

export function fleetDepsFrom(env: Env, actor: string, log: Logger): FleetDeps {
  configureEndpoint(env.NEON_FETCH_ENDPOINT);
  return {
    ...controlDepsFrom(env, actor),
    migrationLocks: {
      lockTimeoutMs: wholeVar(env.MIGRATION_LOCK_TIMEOUT_MS),
      statementTimeoutMs: wholeVar(env.MIGRATION_STATEMENT_TIMEOUT_MS),
      retries: wholeVar(env.MIGRATION_LOCK_RETRIES),
      onRetry: (attempt) => log.log("info", "migration_lock_retry", { attempt }),
    },
    send: async (messages) => {
      await env.FLEET_QUEUE.sendBatch(messages.map((body) => ({ body, contentType: "json" as const })));
    },
    alert: async (payload) => {
      // Not `event`: a field of that name would replace the log line's own event name.
      log.log("warn", "fleet_alert", {
        alert: String(payload.event),
        runId: String(payload.runId ?? ""),
        tenant: String(payload.tenant ?? ""),
        ...(payload.domain ? { domain: String(payload.domain) } : {}),
        ...(payload.migration ? { migration: String(payload.migration) } : {}),
        ...(payload.status ? { status: String(payload.status) } : {}),
      });
      if (!env.ALERT_WEBHOOK_URL) return;
      const response = await fetch(env.ALERT_WEBHOOK_URL, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ source: "tenantry", at: new Date().toISOString(), ...payload }),
        signal: AbortSignal.timeout(5_000),
      });
      if (!response.ok) log.log("error", "fleet_alert_failed", { status: response.status });
    },
  };
}

/** The cron expression of the nightly export trigger (wrangler.toml). */
export const NIGHTLY_EXPORT_CRON = "0 3 * * *";

export function exportDepsFrom(env: Env, actor: string, log: Logger): DeleteExportDeps & FleetDeps {
  const fleet = fleetDepsFrom(env, actor, log);
  const retention = Number(env.EXPORT_RETENTION);
  const settle = Number(env.FINAL_EXPORT_SETTLE_MS);
  const deps: DeleteExportDeps & FleetDeps = {
    ...fleet,
    bucket: env.EXPORTS,
    retention: Number.isInteger(retention) && retention > 0 ? retention : undefined,
    settleMs: env.FINAL_EXPORT_SETTLE_MS !== "" && Number.isFinite(settle) && settle >= 0 ? settle : undefined,
    sendExport: async (messages) => {
      for (let start = 0; start < messages.length; start += 100) {
        await env.FLEET_QUEUE.sendBatch(
          messages.slice(start, start + 100).map((body) => ({ body, contentType: "json" as const })),
        );
      }
    },
  };
  return {
    ...deps,
    // Before a rollback drops data: an export of the tenant to R2, inline (drop-guard.ts).
    exportBeforeDrop: async (tenant) => {
      const taken = await inlineExport(deps, tenant, "pre_rollback");
      if (taken.status !== "complete") throw new Error(`export ${taken.id} ${taken.status}`);
      return taken.id;
    },
  };
}

export async function handleScheduled(
  controller: ScheduledController,
  env: Env,
  _ctx: ExecutionContext,
): Promise<void> {
  const log = createLogger(env.LOG_LEVEL, { cron: controller.cron });
  if (!env.CONTROL_DATABASE_URL) {
    log.log("warn", "fleet_dispatch_skipped", { reason: "no CONTROL_DATABASE_URL" });
    return;
  }
  const deps = exportDepsFrom(env, "system:cron", log);
  if (controller.cron === NIGHTLY_EXPORT_CRON) {
    // One step of the nightly pass; the queue takes it further.
    await nightlyStep(env, await scheduleNightlyExports(deps, { scheduledTime: controller.scheduledTime }), log);
    const days = Number(env.FINAL_EXPORT_RETENTION_DAYS);
    const finalExpired = await expireFinalExports(
      deps,
      Number.isFinite(days) && days > 0 ? days : DEFAULT_FINAL_RETENTION_DAYS,
    );
    log.log("info", "final_exports_expired", { finalExpired });
    return;
  }
  log.log("info", "domains_polled", { ...(await pollDomains(deps).catch(() => ({ failed: 1 }))) });
  const { queued } = await dispatch(deps);
  // One small step of the KV reconcile pass (this invocation's limits are shared with the domain poll
  // and the dispatch above); the queue takes it further with whole steps (null: the queue has it).
  const report = await reconcile(deps, { budget: CRON_RECONCILE_BUDGET });
  if (report && !report.done) await env.FLEET_QUEUE.send(nextMessage(report), { contentType: "json" });
  log.log("info", "fleet_dispatch", {
    queued,
    kvPhase: report?.phase ?? "queued",
    kvMissing: report?.missing ?? 0,
    kvStale: report?.stale ?? 0,
    kvOrphan: report?.orphan ?? 0,
  });
}

function isReconcileMessage(body: unknown): body is ReconcileMessage {
  const b = body as Partial<ReconcileMessage> | null;
  return typeof b === "object" && b !== null && b.kind === "reconcile" && typeof b.pass === "string";
}

/** One step of a reconcile pass, and the message for the next while the pass is not done. */
async function reconcileStep(env: Env, deps: DeleteExportDeps, body: ReconcileMessage): Promise<void> {
  const report = await reconcile(deps, { from: body });
  if (report && !report.done) await env.FLEET_QUEUE.send(nextMessage(report), { contentType: "json" });
}

function isNightlyMessage(body: unknown): body is NightlyMessage {
  const b = body as Partial<NightlyMessage> | null;
  return typeof b === "object" && b !== null && b.kind === "exports:nightly" && typeof b.pass === "string";
}

/** Logs a nightly step's progress and queues the next step while the pass is not done. */
async function nightlyStep(env: Env, report: NightlyReport | null, log: Logger): Promise<void> {
  if (!report) return;
  log.log("info", "exports_scheduled", { queued: report.queued, step: report.seq, done: report.done });
  if (!report.done) await env.FLEET_QUEUE.send(nextNightlyMessage(report), { contentType: "json" });
}

function isExportMessage(body: unknown): body is ExportMessage {
  const b = body as Partial<ExportMessage> | null;
  return typeof b === "object" && b !== null && b.kind === "export" && typeof b.exportId === "string";
}

function isMigrateMessage(body: unknown): body is MigrateMessage {
  const b = body as Partial<MigrateMessage> | null;
  return (
    typeof b === "object" &&
    b !== null &&
    b.kind === "migrate" &&
    typeof b.runId === "string" &&
    typeof b.tenantId === "string"
  );
}

/**
 * One dispatch for a batch's finished tenants (not one per tenant), tried twice: when every batch
 * in flight fails to dispatch, only the cron (every 15 minutes) moves the run on.
 */
async function dispatchAfterBatch(deps: FleetDeps, log: Logger): Promise<void> {
  for (let attempt = 1; attempt <= DISPATCH_ATTEMPTS; attempt += 1) {
    try {
      await dispatch(deps);
      return;
    } catch (error) {
      log.log("error", "fleet_dispatch_failed", { errorName: (error as Error)?.name ?? "Error", attempt });
      if (attempt < DISPATCH_ATTEMPTS) await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
}

export async function handleFleetBatch(batch: MessageBatch<unknown>, env: Env, _ctx: ExecutionContext): Promise<void> {
  const log = createLogger(env.LOG_LEVEL, { queue: batch.queue });
  const deps = exportDepsFrom(env, "system:queue", log);
  const messages = [...batch.messages];
  const worker = async () => {
    for (let message = messages.shift(); message; message = messages.shift()) {
      if (isExportMessage(message.body)) {
        try {
          const result = await runExport(deps, message.body.exportId);
          log.log(result.status === "failed" ? "warn" : "info", "export", {
            exportId: result.id,
            status: result.status,
            attempt: message.attempts,
          });
          // A failed export is recorded; the queue retries it (from scratch) a few times.
          if (result.status === "failed")
            message.retry({ delaySeconds: Math.min(600, 30 * 2 ** Math.min(5, message.attempts)) });
          else message.ack();
        } catch (error) {
          log.log("error", "export_retry", {
            exportId: message.body.exportId,
            errorName: (error as Error)?.name ?? "Error",
          });
          message.retry({ delaySeconds: 60 });
        }
        continue;
      }
      if (isNightlyMessage(message.body)) {
        const from = message.body;
        await scheduleNightlyExports(deps, { from })
          .then((report) => nightlyStep(env, report, log))
          .then(
            () => message.ack(),
            () => message.retry({ delaySeconds: 30 }),
          );
        continue;
      }
      if (isReconcileMessage(message.body)) {
        await reconcileStep(env, deps, message.body).then(
          () => message.ack(),
          () => message.retry({ delaySeconds: 30 }),
        );
        continue;
      }
      if (!isMigrateMessage(message.body)) {
        log.log("warn", "fleet_message_invalid", { messageId: message.id });
        message.ack();
        continue;
      }
      try {
        const outcome = await applyTenant(deps, message.body, { dispatch: false });
        dispatchAfter = true;
        log.log(outcome === "done" || outcome === "skipped" ? "info" : "warn", "fleet_tenant", {
          runId: message.body.runId,
          tenantId: message.body.tenantId,
          outcome,
          attempt: message.attempts,
        });
        message.ack();
      } catch (error) {
        // The control plane itself failed: let the queue redeliver, backing off.
        log.log("error", "fleet_tenant_retry", {
          tenantId: message.body.tenantId,
          errorName: (error as Error)?.name ?? "Error",
        });
        message.retry({ delaySeconds: Math.min(300, 5 * 2 ** Math.min(6, message.attempts)) });
      }
    }
  };
  let dispatchAfter = false;
  await Promise.all(Array.from({ length: Math.min(BATCH_PARALLELISM, messages.length) }, worker));
  if (dispatchAfter) await dispatchAfterBatch(deps, log);
}
