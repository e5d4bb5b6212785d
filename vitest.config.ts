import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts"],
          globalSetup: ["test/node/global-setup.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        // The Worker inside workerd, talking to embedded Postgres through the gateway.
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                NEON_FETCH_ENDPOINT: inject("gatewayUrl"),
                JWT_SECRET: inject("jwtSecret"),
                DB_ENCRYPTION_KEYS: inject("encryptionKeys"),
                ADMIN_JWT_SECRET: inject("adminJwtSecret"),
                CONTROL_DATABASE_URL: inject("controlUrl"),
                LOCAL_PROVISIONER_URL: inject("adminUrl"),
                NEON_API_KEY: "",
                // No Cloudflare by default (domains served at once); admin-domains.test.ts sets it per request.
                // Set here so that the fake API and alert sink `npm run dev` writes to .dev.vars never apply.
                CLOUDFLARE_API_TOKEN: "",
                CLOUDFLARE_ZONE_ID: "",
                CLOUDFLARE_API_URL: "",
                ALERT_WEBHOOK_URL: "",
                EXPORT_SIGNING_KEY: `${String(inject("adminJwtSecret"))}-exports`,
                CONSOLE_SESSION_SECRET: `${String(inject("adminJwtSecret"))}-console`,
                DB_TIMEOUT_MS: "3000",
                LOG_LEVEL: "warn",
              },
            },
          })),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          globalSetup: ["test/worker/global-setup.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
