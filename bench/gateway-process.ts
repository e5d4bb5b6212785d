/**
 * The SQL-over-HTTP gateway in a process of its own, for benchmarks that should charge the
 * measured process only with what runs in a Worker: in production that HTTP work is Neon's proxy,
 * on Neon's machines. Run directly it starts a gateway on a free port, prints `GATEWAY <url>` and
 * stops when its standard input closes.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { startGateway } from "../src/dev/gateway/server.ts";

export interface GatewayProcess {
  readonly url: string;
  /** CPU seconds the gateway process has used so far (Linux /proc; undefined elsewhere). */
  cpuSeconds(): number | undefined;
  close(): Promise<void>;
}

/** Starts the gateway in a child process (Node with the tsx loader, as the bench itself runs). */
export async function startGatewayProcess(): Promise<GatewayProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      if (line.startsWith("GATEWAY ")) resolve(line.slice("GATEWAY ".length));
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the gateway process exited with ${code} before it listened`)));
  });
  return {
    url,
    cpuSeconds() {
      try {
        const fields = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
        // utime and stime, fields 14 and 15 of stat (11 and 12 after the command name), in 1/100 s.
        return (Number(fields[11]) + Number(fields[12])) / 100;
      } catch {
        return undefined;
      }
    },
    async close() {
      child.stdin?.end();
      await exited;
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const gateway = await startGateway({ port: 0 });
  console.log(`GATEWAY ${gateway.url}`);
  process.stdin.resume();
  process.stdin.on("end", async () => {
    await gateway.close();
    process.exit(0);
  });
}
