/**
 * wrangler for the benches that drive a real Worker: `wrangler dev` as a child process (onboarding),
 * and a one-off bundle for miniflare to serve (router).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { projectRoot, WRANGLER_ENV } from "../src/cli/project-config.ts";

const WRANGLER = join(projectRoot, "node_modules", "wrangler", "bin", "wrangler.js");

/**
 * Bundles the Worker of `configPath` into `outdir` as `wrangler deploy` would (`--dry-run`, nothing
 * uploaded) and returns the path of its entry module (one file: wrangler inlines the imports).
 */
export async function bundleWorker(configPath: string, outdir: string): Promise<string> {
  await promisify(execFile)(
    process.execPath,
    [WRANGLER, "deploy", "--dry-run", "--config", configPath, "--outdir", outdir],
    { cwd: projectRoot, env: { ...process.env, ...WRANGLER_ENV } },
  );
  // The entry keeps its source's name (index.js, worker.js); source maps and a README sit beside it.
  const entry = (await readdir(outdir)).find((file) => file.endsWith(".js"));
  if (!entry) throw new Error(`wrangler wrote no bundle for ${configPath}`);
  return join(outdir, entry);
}

/** Starts `wrangler dev` on 127.0.0.1 with `args` and `--var`s, offline and quiet; stderr errors go to `log`. */
export function startWrangler(args: string[], vars: Record<string, string>, log: (line: string) => void): ChildProcess {
  const varArgs = Object.entries(vars).flatMap(([key, value]) => ["--var", `${key}:${value}`]);
  const child = spawn(process.execPath, [WRANGLER, "dev", "--ip", "127.0.0.1", ...args, ...varArgs], {
    cwd: projectRoot,
    env: { ...process.env, ...WRANGLER_ENV },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    const text = chunk.toString();
    // workerd may complain while it is being stopped: only errors while it serves matter.
    if (child.exitCode === null && !child.killed && /error/i.test(text)) log(text.trim());
  });
  child.stdout?.resume();
  return child;
}

/** Polls `ready` every 250 ms until it answers true (60 s at most), failing early if wrangler exits. */
export async function waitReady(port: number, child: ChildProcess, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}`);
    try {
      if (await ready()) return;
    } catch {
      // not yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`wrangler dev on ${port} did not start`);
}

/** Stops every child still running and waits until they have exited. */
export async function stopAll(children: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map((child) => {
      if (child.exitCode !== null) return undefined;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      return exited;
    }),
  );
}
