/**
 * The control plane's dependencies for one admin request: the builders of deps.ts and
 * fleet/handlers.ts, given this request's admin subject, request id and log, so that what a handler
 * changes is audited under the caller who asked for it.
 */
import type { Context } from "hono";
import { exportDepsFrom, fleetDepsFrom } from "../fleet/handlers.ts";
import type { AdminEnv } from "./auth.ts";
import { controlDepsFrom } from "./deps.ts";

/** Tenants, domains, KV, keys, audit: the control database and KV. */
export const controlDeps = <E extends AdminEnv>(c: Context<E>) =>
  controlDepsFrom(c.env, c.get("adminSub"), c.get("requestId"));

/** Migration runs: the control plane plus the fleet queue and alerts. */
export const fleetDeps = <E extends AdminEnv>(c: Context<E>) => fleetDepsFrom(c.env, c.get("adminSub"), c.get("log"));

/** Exports: the fleet's dependencies plus the R2 bucket. */
export const exportDeps = <E extends AdminEnv>(c: Context<E>) => ({
  ...exportDepsFrom(c.env, c.get("adminSub"), c.get("log")),
  requestId: c.get("requestId"),
});
