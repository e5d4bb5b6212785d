/**
 * `npm run control:migrate`: brings the control-plane database at CONTROL_DATABASE_URL to the latest
 * migration of migrations-control/, for a production control database on Neon (docs/deploy.md).
 * `npm run dev` and the tests migrate their local one themselves (src/dev/seed.ts). It uses the
 * bundle and the ledger the Worker's own code uses (src/shared/migrations.ts), over Neon's HTTP
 * driver, so running it again applies only what is new. NEON_FETCH_ENDPOINT, when set, points the
 * driver at a local gateway instead (`npm run db`), as the Worker does.
 */
import { neon, neonConfig } from "@neondatabase/serverless";
import { useGatewayFetch } from "../src/dev/gateway/node-fetch.ts";
import { controlMigrations } from "../src/generated/control-migrations.ts";
import { migrateDatabase } from "../src/shared/migrations.ts";

const url = process.env.CONTROL_DATABASE_URL;
if (!url) {
  console.error("CONTROL_DATABASE_URL is not set: the control database's connection string (docs/deploy.md)");
  process.exit(1);
}
if (process.env.NEON_FETCH_ENDPOINT) neonConfig.fetchEndpoint = process.env.NEON_FETCH_ENDPOINT;
// A plain-http local gateway gets the faster node:http fetch; Neon itself keeps Node's fetch.
useGatewayFetch(neonConfig, process.env.NEON_FETCH_ENDPOINT);
const result = await migrateDatabase(neon(url), controlMigrations);
console.log(
  `control database at ${result.version ?? "no migration"}: ${result.applied.length} applied` +
    (result.applied.length > 0 ? ` (${result.applied.join(", ")})` : "") +
    `, ${result.alreadyApplied.length} already there`,
);
