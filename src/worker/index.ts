/**
 * Tenantry's Worker: every tenant domain, one entry point.
 * fetch: the edge router and tenant routes. scheduled/queue: fleet jobs (src/worker/fleet).
 */
import { createApp } from "./app.ts";
import { handleFleetBatch, handleScheduled } from "./fleet/handlers.ts";

const app = createApp();

export default {
  fetch: app.fetch,
  scheduled: handleScheduled,
  queue: handleFleetBatch,
} satisfies ExportedHandler<Env>;
