import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../../src/cli/args.ts";
import { readConnectionString } from "../../../src/cli/tenants.ts";

const root = join(import.meta.dirname, "..", "..", "..");

/** Runs the real CLI (bin/tenantry.mjs) with no admin API behind it. */
function tenantry(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [join(root, "bin", "tenantry.mjs"), ...args], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, TENANTRY_URL: "http://127.0.0.1:9", JWT_SECRET: "s".repeat(64), ...env },
    timeout: 20_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("tenantry CLI", () => {
  it("mints a tenant token with the ttl asked for, and refuses more than a day", () => {
    const ok = tenantry(["token", "--tenant", "acme", "--sub", "alice", "--ttl", "86400", "--json"]);
    expect(ok.code, ok.stderr).toBe(0);
    const { token } = JSON.parse(ok.stdout) as { token: string };
    const claims = decodeJwt(token);
    expect(claims.sub).toBe("alice");
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(86_400);
    expect(decodeProtectedHeader(token).typ).toBe("JWT");

    for (const ttl of ["86401", "2592000", "0", "1.5", "x"]) {
      const refused = tenantry(["token", "--tenant", "acme", "--ttl", ttl]);
      expect(refused.code, ttl).toBe(2);
      expect(refused.stdout).toBe("");
    }
  });

  it("puts --scope in a tenant token's scope claim (catalog:write for a merchant), none without it", () => {
    const merchant = tenantry(["token", "--tenant", "acme", "--sub", "owner", "--scope", "catalog:write", "--json"]);
    expect(merchant.code, merchant.stderr).toBe(0);
    const { token } = JSON.parse(merchant.stdout) as { token: string };
    expect(decodeJwt(token)).toMatchObject({ tenant: "acme", sub: "owner", scope: "catalog:write" });

    const shopper = tenantry(["token", "--tenant", "acme", "--sub", "alice", "--json"]);
    expect(shopper.code, shopper.stderr).toBe(0);
    expect(decodeJwt((JSON.parse(shopper.stdout) as { token: string }).token)).not.toHaveProperty("scope");

    for (const scope of ["", " catalog:write", "catalog:write  x", 'catalog:write"']) {
      const refused = tenantry(["token", "--tenant", "acme", "--scope", scope]);
      expect(refused.code, scope).toBe(2);
      expect(refused.stdout).toBe("");
    }
  });

  it("refuses a connection string on the command line, where ps and shell history keep it", () => {
    const secret = "postgres://app:hunter2@db.example.com/acme";
    const run = tenantry(["tenants", "create", "acme2", "--region", "eu", "--connection-string", secret]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("--connection-string-file");
    expect(run.stderr).not.toContain("hunter2");
  });

  it("reads the connection string from a file or stdin, one line only", () => {
    const dir = mkdtempSync(join(tmpdir(), "tenantry-cli-"));
    const file = join(dir, "url");
    writeFileSync(file, "postgres://app:pw@db.example.com/acme\n");
    expect(readConnectionString(file)).toBe("postgres://app:pw@db.example.com/acme");
    expect(readConnectionString("-", () => "  postgres://a@b/c \n")).toBe("postgres://a@b/c");
    expect(() => readConnectionString("-", () => "\n")).toThrow(UsageError);
    expect(() => readConnectionString("-", () => "postgres://a@b/c\npostgres://d@e/f")).toThrow(UsageError);
  });

  it("answers usage errors with exit code 2 and an unreachable API with 1", () => {
    expect(tenantry(["nope"]).code).toBe(2);
    expect(tenantry(["tenants", "create"]).code).toBe(2);
    expect(tenantry(["tenants", "list", "--bogus"]).code).toBe(2);
    const down = tenantry(["tenants", "list"], { TENANTRY_ADMIN_TOKEN: "x" });
    expect(down.code).toBe(1);
  });
});
