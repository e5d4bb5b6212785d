/**
 * A stale migration bundle fails CI: `scripts/bundle-migrations.ts --check` (part of `npm run
 * check`) exits 1 and names the stale module when a migration file changed after bundling, and
 * exits 0 once it is bundled again. Run on a throwaway copy of the files the script reads and
 * writes (it resolves them from its own location), never on the repository itself.
 */
import { spawnSync } from "node:child_process";
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const repo = join(import.meta.dirname, "..", "..", "..");
const TSX = join(repo, "node_modules", "tsx", "dist", "cli.mjs");
const TENANT_BUNDLE = join("src", "generated", "migrations.ts");
const CONTROL_BUNDLE = join("src", "generated", "control-migrations.ts");

let dir: string;

function bundle(...args: string[]) {
  const result = spawnSync(process.execPath, [TSX, join(dir, "scripts", "bundle-migrations.ts"), ...args], {
    cwd: dir,
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: result.status, out: `${result.stdout}${result.stderr}` };
}

const journal = (folder: string) => JSON.parse(readFileSync(join(dir, folder, "meta", "_journal.json"), "utf8"));

describe("bundle-migrations --check", () => {
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tenantry-bundle-"));
    for (const path of ["scripts/bundle-migrations.ts", "migrations", "migrations-control", "src/generated"]) {
      cpSync(join(repo, path), join(dir, path), { recursive: true });
    }
    // Bundled fresh first, so the copy does not depend on migrations being edited in the repository.
    expect(bundle().status).toBe(0);
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("passes on an up-to-date bundle, naming both modules", () => {
    const { status, out } = bundle("--check");
    expect(status, out).toBe(0);
    expect(out).toContain(`${TENANT_BUNDLE} is up to date`);
    expect(out).toContain(`${CONTROL_BUNDLE} is up to date`);
  });

  it("fails when a tenant migration changed after bundling, and names the stale module", () => {
    const { entries } = journal("migrations");
    const last = entries.at(-1).tag as string;
    appendFileSync(
      join(dir, "migrations", `${last}.sql`),
      '--> statement-breakpoint\nCREATE INDEX "x_idx" ON "products" ("name");',
    );
    const before = readFileSync(join(dir, TENANT_BUNDLE), "utf8");
    const { status, out } = bundle("--check");
    expect(status, out).toBe(1);
    expect(out).toContain(`${TENANT_BUNDLE} is stale`);
    expect(out).not.toContain(`${CONTROL_BUNDLE} is stale`);
    // --check only reports: the bundle on disk is left as it was.
    expect(readFileSync(join(dir, TENANT_BUNDLE), "utf8")).toBe(before);

    // Bundled again, the check passes and the bundle carries the new statement.
    expect(bundle().status).toBe(0);
    expect(bundle("--check").status).toBe(0);
    expect(readFileSync(join(dir, TENANT_BUNDLE), "utf8")).toContain("x_idx");
  });

  it("fails when a down file changed", () => {
    const { entries } = journal("migrations");
    const last = entries.at(-1).tag as string;
    appendFileSync(join(dir, "migrations", `${last}.down.sql`), "\n--> statement-breakpoint\nSELECT 1;");
    const { status, out } = bundle("--check");
    expect(status, out).toBe(1);
    expect(out).toContain(`${TENANT_BUNDLE} is stale`);
  });

  it("fails when a migration was added to the journal but not bundled", () => {
    const meta = journal("migrations");
    const last = meta.entries.at(-1);
    const tag = `${String(last.idx + 1).padStart(4, "0")}_added`;
    meta.entries.push({ ...last, idx: last.idx + 1, tag, when: last.when + 1 });
    writeFileSync(join(dir, "migrations", "meta", "_journal.json"), JSON.stringify(meta, null, 2));
    writeFileSync(join(dir, "migrations", `${tag}.sql`), 'ALTER TABLE "products" ADD COLUMN "added" text;');
    const { status, out } = bundle("--check");
    expect(status, out).toBe(1);
    expect(out).toContain(`${TENANT_BUNDLE} is stale`);
  });

  it("fails when a control-plane migration changed", () => {
    const { entries } = journal("migrations-control");
    const last = entries.at(-1).tag as string;
    appendFileSync(join(dir, "migrations-control", `${last}.sql`), "\n--> statement-breakpoint\nSELECT 1;");
    const { status, out } = bundle("--check");
    expect(status, out).toBe(1);
    expect(out).toContain(`${CONTROL_BUNDLE} is stale`);
    expect(out).toContain(`${TENANT_BUNDLE} is up to date`);
  });

  it("fails when the generated module was edited by hand", () => {
    appendFileSync(join(dir, TENANT_BUNDLE), "// edited\n");
    const { status, out } = bundle("--check");
    expect(status, out).toBe(1);
    expect(out).toContain(`${TENANT_BUNDLE} is stale`);
  });
});
