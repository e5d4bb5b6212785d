import { describe, expect, it } from "vitest";
import { checkBundleSize, checkDeployConfig, requiredSecrets } from "../../scripts/deploy-check.ts";
import { parseWranglerConfig, readWranglerConfig, type WranglerConfig } from "../../src/cli/project-config.ts";

/** The project's wrangler.toml with [env.production] changed by `edit`. */
function withProduction(edit: (production: Record<string, unknown>) => void): WranglerConfig {
  const config = structuredClone(readWranglerConfig()) as { env: { production: Record<string, unknown> } };
  edit(config.env.production);
  return config as WranglerConfig;
}

describe("deploy:check", () => {
  it("passes the project's production config, listing its placeholders", () => {
    const report = checkDeployConfig(readWranglerConfig(), "production");
    expect(report.problems).toEqual([]);
    expect(report.placeholders).toContain("env.production.vars.PLATFORM_DOMAIN");
    expect(report.placeholders).toContain("env.production.kv_namespaces[0].id");
  });

  it("fails on a config missing a required var", () => {
    const config = withProduction((production) => {
      const { ADMIN_HOST: _dropped, ...vars } = production.vars as Record<string, string>;
      production.vars = vars;
    });
    expect(checkDeployConfig(config, "production").problems).toEqual([
      "[env.production].vars: ADMIN_HOST is not declared (vars are not inherited)",
    ]);
    const empty = withProduction((production) => {
      (production.vars as Record<string, string>).JWT_ISSUER = "";
    });
    expect(checkDeployConfig(empty, "production").problems).toEqual(["[env.production].vars: JWT_ISSUER is empty"]);
  });

  it("fails on a needed secret that is not declared, and on a dev gateway left in", () => {
    const config = withProduction((production) => {
      (production.vars as Record<string, string>).JWKS_URL = "";
      (production.vars as Record<string, string>).NEON_FETCH_ENDPOINT = "http://127.0.0.1:4444/sql";
    });
    expect(checkDeployConfig(config, "production").problems).toEqual([
      "[env.production].vars: NEON_FETCH_ENDPOINT must be empty in production",
      "[env.production].secrets.required: JWT_SECRET is needed with these vars but not declared",
    ]);
  });

  it("fails on a binding the environment does not repeat, and on a missing environment", () => {
    const config = withProduction((production) => {
      production.r2_buckets = [];
    });
    expect(checkDeployConfig(config, "production").problems).toEqual([
      "[env.production]: R2 bucket EXPORTS is not declared",
    ]);
    expect(checkDeployConfig(parseWranglerConfig('name = "x"\n'), "production").problems).toEqual([
      "wrangler.toml has no [env.production] section",
    ]);
  });

  it("derives the secrets from the vars", () => {
    expect(requiredSecrets({ DEFAULT_PROVISIONER: "local", LOCAL_REGIONS: "local" }).sort()).toEqual([
      "ADMIN_JWT_SECRET",
      "CONTROL_DATABASE_URL",
      "DB_ENCRYPTION_KEYS",
      "EXPORT_SIGNING_KEY",
      "JWT_SECRET",
      "LOCAL_PROVISIONER_URL",
    ]);
    expect(
      requiredSecrets({
        DEFAULT_PROVISIONER: "neon",
        JWKS_URL: "https://id.example/jwks",
        ADMIN_JWKS_URL: "https://id.example/admin/jwks",
        NEON_PROJECTS: '{"eu":{"projectId":"p"}}',
      }).sort(),
    ).toEqual(["CONTROL_DATABASE_URL", "DB_ENCRYPTION_KEYS", "EXPORT_SIGNING_KEY", "NEON_API_KEY"]);
    expect(requiredSecrets({ JWKS_URL: "j", ADMIN_JWKS_URL: "a", CLOUDFLARE_ZONE_ID: "zone" })).toContain(
      "CLOUDFLARE_API_TOKEN",
    );
  });

  it("reports the bundle size against the plan's limit", () => {
    expect(checkBundleSize(350 * 1024, "free").problem).toBeUndefined();
    expect(checkBundleSize(4 * 1024 * 1024, "free").problem).toBe("the bundle is over the free plan's limit");
    expect(checkBundleSize(4 * 1024 * 1024, "paid").problem).toBeUndefined();
  });
});
