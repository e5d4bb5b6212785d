/**
 * The local Neon-compatible stack: a real Postgres (embedded, or `DATABASE_URL`) and the
 * SQL-over-HTTP gateway in front of it. Dev-only.
 */
import { type Gateway, type GatewayOptions, startGateway } from "./gateway/server.ts";
import { externalPostgres, type PostgresServer, startEmbeddedPostgres } from "./postgres.ts";

export interface LocalStack {
  readonly postgres: PostgresServer;
  readonly gateway: Gateway;
  /** Stops the gateway (draining in-flight queries) and then Postgres. */
  stop(): Promise<void>;
}

export interface LocalStackOptions {
  /** Persistent data folder for embedded Postgres; omitted: a throwaway cluster. */
  readonly dataDir?: string;
  /** Embedded Postgres port; omitted: a free port. */
  readonly postgresPort?: number;
  /** Use this server instead of embedded Postgres (defaults to `DATABASE_URL`). */
  readonly databaseUrl?: string | undefined;
  readonly gateway?: GatewayOptions;
  readonly onLog?: (line: string) => void;
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const databaseUrl = options.databaseUrl ?? process.env.DATABASE_URL;
  const postgres = databaseUrl
    ? externalPostgres(databaseUrl)
    : await startEmbeddedPostgres({
        ...(options.dataDir ? { dataDir: options.dataDir } : {}),
        ...(options.postgresPort ? { port: options.postgresPort } : {}),
        ...(options.onLog ? { onLog: options.onLog } : {}),
      });
  let gateway: Gateway;
  try {
    gateway = await startGateway({ ...options.gateway });
  } catch (error) {
    await postgres.stop();
    throw error;
  }
  return {
    postgres,
    gateway,
    async stop() {
      await gateway.close();
      await postgres.stop();
    },
  };
}
