import { defineConfig } from "drizzle-kit";

// The control-plane schema only: `npm run db:generate` writes migrations-control/.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/control/schema.ts",
  out: "./migrations-control",
});
