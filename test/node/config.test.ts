import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  parseDevVars,
  parseWranglerConfig,
  readWranglerConfig,
  wranglerConfigPath,
  wranglerVars,
} from "../../src/cli/project-config.ts";

describe("project configuration readers", () => {
  it("reads the vars of wrangler.toml, top level and production apart", () => {
    const config = readWranglerConfig();
    const local = wranglerVars(undefined, config);
    expect(local.JWT_AUDIENCE).toBe("tenantry-api");
    expect(local.ADMIN_JWT_ISSUER).toBe("https://auth.tenantry.localhost/admin");
    expect(local.NEON_PROJECTS).toBe("{}");
    const production = wranglerVars("production", config);
    expect(production.DEFAULT_PROVISIONER).toBe("neon");
    expect(production.NEON_FETCH_ENDPOINT).toBe("");
    // Named environments inherit no vars: production declares every one the top level has.
    expect(Object.keys(production).sort()).toEqual(Object.keys(local).sort());
    expect(wranglerVars("staging", config)).toEqual({});
  });

  it("keeps the bindings and queue settings in wrangler.toml", () => {
    const config = parseWranglerConfig(readFileSync(wranglerConfigPath, "utf8"));
    expect(config.kv_namespaces?.map((kv) => kv.binding)).toEqual(["TENANTS"]);
    expect(config.r2_buckets?.map((r2) => r2.binding)).toEqual(["EXPORTS"]);
    expect(config.queues?.consumers?.[0]).toMatchObject({
      queue: "tenantry-fleet",
      dead_letter_queue: "tenantry-fleet-dlq",
    });
    expect(config.triggers?.crons).toEqual(["*/15 * * * *", "0 3 * * *"]);
    expect(config.secrets?.required).toContain("DB_ENCRYPTION_KEYS");
  });

  it("gives structured vars to the Worker's view as JSON", () => {
    const config = parseWranglerConfig('[vars]\nA = "x"\nB = { region = "eu" }\nC = 3\n');
    expect(wranglerVars(undefined, config)).toEqual({ A: "x", B: '{"region":"eu"}', C: "3" });
  });

  it("parses .dev.vars with dotenv's rules: comments, quotes, blanks", () => {
    const text = [
      "# written by npm run dev",
      "",
      "JWT_SECRET=abc123",
      'QUOTED="has # and spaces"',
      "SINGLE='kept as is'",
      "TRAILING=value # a comment",
      "  SPACED = padded  ",
      "CONTROL_DATABASE_URL=postgresql://u:p%40ss@127.0.0.1:54320/tenantry_control",
      "DB_ENCRYPTION_KEYS=k1:AbC-_x,k0:ZzZ",
      "EMPTY=",
    ].join("\n");
    expect(parseDevVars(text)).toEqual({
      JWT_SECRET: "abc123",
      QUOTED: "has # and spaces",
      SINGLE: "kept as is",
      TRAILING: "value",
      SPACED: "padded",
      CONTROL_DATABASE_URL: "postgresql://u:p%40ss@127.0.0.1:54320/tenantry_control",
      DB_ENCRYPTION_KEYS: "k1:AbC-_x,k0:ZzZ",
      EMPTY: "",
    });
  });
});
