/**
 * Fleet job entry points. `scheduled()` only finds work: it dispatches queued work of running
 * migration runs (sendBatch, per tenant) and reconciles KV with the control plane. `queue()` does
 * the work: one tenant per message, a few in parallel within a batch. A message is acknowledged once
 * its outcome is recorded (done, failed or drift are all recorded outcomes); it is retried with
 * backoff only when the control plane itself could not be reached, and lands in the dead-letter
 * queue after the configured retries.
 */
import {
  type ExportDeps,
  type ExportMessage,
  runExport,
  scheduleNightlyExports,
} from "../../control/export/service.ts";
import { applyTenant } from "../../control/fleet/consumer.ts";
import { dispatch, type FleetDeps, type MigrateMessage } from "../../control/fleet/dispatch.ts";
import { reconcile } from "../../control/tenants/reconcile.ts";
import { controlDepsFrom } from "../admin/deps.ts";
import { createLogger, type Logger } from "../http/log.ts";
import { configureEndpoint } from "../tenant-db/middleware.ts";

/**
 * Tenants migrated at once inside one consumer batch (each is a handful of HTTP requests, one
 * connection at a time, so 4 stay under the 6 connections of an invocation). wrangler.toml's
 * max_batch_size matches it.
 */
const BATCH_PARALLELISM = 4;
/** Tries at the dispatch that ends a batch. */
const DISPATCH_ATTEMPTS = 2;

export function fleetDepsFrom(env: Env, actor: string, log: Logger): FleetDeps {
  configureEndpoint(env.NEON_FETCH_ENDPOINT);
  return {
    ...controlDepsFrom(env, actor),
    send: async (messages) => {
      await env.FLEET_QUEUE.sendBatch(messages.map((body) => ({ body, contentType: "json" as const })));
    },
    alert: async (payload) => {
      // Not `event`: a field of that name would replace the log line's own event name.
      log.log("warn", "fleet_alert", {
        alert: String(payload.event),
        runId: String(payload.runId ?? ""),
        tenant: String(payload.tenant ?? ""),
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

export function exportDepsFrom(env: Env, actor: string, log: Logger): ExportDeps & FleetDeps {
  const fleet = fleetDepsFrom(env, actor, log);
  const retention = Number(env.EXPORT_RETENTION);
  return {
    ...fleet,
    bucket: env.EXPORTS,
    retention: Number.isInteger(retention) && retention > 0 ? retention : undefined,
    sendExport: async (messages) => {
      for (let start = 0; start < messages.length; start += 100) {
        await env.FLEET_QUEUE.sendBatch(
          messages.slice(start, start + 100).map((body) => ({ body, contentType: "json" as const })),
        );
      }
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
    const exports = await scheduleNightlyExports(deps);
    log.log("info", "exports_scheduled", { exports });
    return;
  }
  const { queued } = await dispatch(deps);
  const report = await reconcile(deps);
  log.log("info", "fleet_dispatch", {
    queued,
    kvMissing: report.missing,
    kvStale: report.stale,
    kvOrphan: report.orphan,
  });
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
  // One dispatch for the batch's finished tenants (not one per tenant), tried twice: when every
  // batch in flight fails to dispatch, only the cron (every 15 minutes) moves the run on.
  for (let attempt = 1; dispatchAfter && attempt <= DISPATCH_ATTEMPTS; attempt += 1) {
    try {
      await dispatch(deps);
      break;
    } catch (error) {
      log.log("error", "fleet_dispatch_failed", { errorName: (error as Error)?.name ?? "Error", attempt });
      if (attempt < DISPATCH_ATTEMPTS) await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
}
