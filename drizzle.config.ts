import { defineConfig } from "drizzle-kit";

// The tenant schema only: `npm run db:generate` writes migrations/ (drizzle-kit's folder format).
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/worker/store/schema.ts",
  out: "./migrations",
});
