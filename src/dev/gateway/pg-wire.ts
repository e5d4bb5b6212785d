/**
 * One connection from the gateway to Postgres, speaking the wire protocol itself (messages from
 * `pg-protocol`) so that queries can be pipelined: every query is its own Parse/Bind/Describe/
 * Execute/Sync, so each runs as its own implicit transaction and an error ends only its own query,
 * as on Neon; several are written in one go (one write per event-loop turn) and their answers are
 * read back in order. That halves the system calls and wake-ups per query against one connection
 * per query, which is where the gateway's time went at 8 in flight.
 *
 * Values come back as Postgres prints them (text format): the client driver parses them. Which
 * queries may share a connection, and when, is decided by pools.ts.
 */
import { connect, type Socket } from "node:net";
import { type DatabaseError, parse, serialize } from "pg-protocol";
import type { BackendMessage } from "pg-protocol/dist/messages.js";
import { md5Password, type ScramProof, type ScramSession, scramContinue, scramFinish, scramStart } from "./pg-auth.ts";
import type { FieldInfo, Param, ResultShape } from "./protocol.ts";

/** One query's answer, filled in as its messages arrive; it is the `ResultShape` the protocol shapes. */
export interface WireResult extends ResultShape {
  command: string | null;
  rowCount: number | null;
  readonly rows: (string | null)[][];
  fields: readonly FieldInfo[];
}

export interface WireOptions {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  readonly applicationName: string;
  readonly statementTimeoutMs?: number | undefined;
  readonly connectTimeoutMs: number;
}

interface Pending {
  readonly resolve: (result: WireResult) => void;
  readonly reject: (error: Error) => void;
  readonly result: WireResult;
  error?: Error;
  /** When it was written to the socket (performance.now()); undefined while it waits for startup. */
  sentAt?: number;
}

/** "SELECT 3" → SELECT, 3; "INSERT 0 5" → INSERT, 5; "CREATE TABLE" → CREATE (as `pg` reads it). */
const COMMAND_TAG = /^([A-Za-z]+)(?: (\d+))?(?: (\d+))?/;

/** What `pg` sends a server that asks for COPY data over a query with no source. */
const NO_COPY_SOURCE = "No source stream defined";

type Handler = (message: BackendMessage) => void;

export class WireConnection {
  private readonly sent: Pending[] = [];
  private outbox: Buffer[] = [];
  private flushing = false;
  private handler: Handler = () => {};
  private started = false;
  /** Settles when Postgres is ready for queries; queries queued before then wait for it. */
  readonly ready: Promise<void>;
  /** Why the connection cannot be used any more; set once. */
  broken: Error | undefined;
  /** Told once, when the connection breaks or is closed (the pool's bookkeeping). */
  onBroken: (() => void) | undefined;

  private readonly socket: Socket;

  /** Starts connecting and authenticating; queries may be queued at once (see `ready`). */
  constructor(options: WireOptions) {
    this.socket = connect({ host: options.host, port: options.port });
    this.socket.setNoDelay(true);
    void parse(this.socket, (message) => this.handler(message));
    this.socket.on("error", (error) => this.fail(error));
    this.socket.on("close", () => this.fail(new Error("Connection terminated unexpectedly")));
    this.ready = this.startup(options);
    // A failed startup is also every queued query's answer; nobody need await `ready`.
    this.ready.catch(() => {});
  }

  /** Queries written or waiting to be written whose answers have not all come back. */
  get pending(): number {
    return this.sent.length;
  }

  /** When the oldest query still pending was written (performance.now()); undefined if none was. */
  get oldestSentAt(): number | undefined {
    return this.sent[0]?.sentAt;
  }

  /** Queues one query; it is written with the others queued in this turn of the event loop. */
  query(text: string, params: readonly Param[]): Promise<WireResult> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.sent.push({
        resolve,
        reject,
        result: { command: null, rowCount: null, rows: [], fields: [] },
      });
      this.outbox.push(
        serialize.parse({ text }),
        serialize.bind({ values: params.map((value) => (value === null ? null : String(value))) }),
        serialize.describe({ type: "P" }),
        serialize.execute({}),
        serialize.sync(),
      );
      this.scheduleFlush();
    });
  }

  /** Says goodbye to Postgres (Terminate) and closes the socket. */
  close(): Promise<void> {
    if (this.socket.destroyed) {
      this.fail(new Error("Connection closed by the gateway"));
      return Promise.resolve();
    }
    const closed = new Promise<void>((resolve) => this.socket.once("close", () => resolve()));
    this.socket.end(serialize.end());
    setTimeout(() => this.socket.destroy(), 1_000).unref();
    this.fail(new Error("Connection closed by the gateway"), false);
    return closed;
  }

  /** Queries written and not answered yet. */
  private inFlight = 0;

  /**
   * Writes at the end of this event-loop turn, unless queries written earlier are still running:
   * then the new ones go out together when those have answered (Postgres runs one connection's
   * queries one after the other anyway), so a busy connection costs one write per round trip.
   */
  private scheduleFlush(): void {
    if (this.flushing || !this.started || this.inFlight > 0) return;
    this.flushing = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushing = false;
    if (this.broken || this.outbox.length === 0) return;
    const chunks = this.outbox;
    this.outbox = [];
    const now = performance.now();
    for (let index = this.sent.length - 1; index >= 0; index -= 1) {
      const pending = this.sent[index] as Pending;
      if (pending.sentAt !== undefined) break;
      pending.sentAt = now;
      this.inFlight += 1;
    }
    this.socket.write(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
  }

  private fail(error: Error, destroy = true): void {
    if (this.broken) return;
    this.broken = error;
    this.outbox = [];
    this.inFlight = 0;
    // A FATAL error (the backend terminated) is the answer of the query it interrupted.
    for (const pending of this.sent.splice(0)) pending.reject(pending.error ?? error);
    if (destroy && !this.socket.destroyed) this.socket.destroy();
    this.onBroken?.();
  }

  private onQueryMessage(message: BackendMessage): void {
    const head = this.sent[0];
    switch (message.name) {
      case "rowDescription":
        if (head) head.result.fields = (message as unknown as { fields: FieldInfo[] }).fields;
        return;
      case "dataRow":
        head?.result.rows.push((message as unknown as { fields: (string | null)[] }).fields);
        return;
      case "commandComplete": {
        const match = COMMAND_TAG.exec((message as unknown as { text: string }).text);
        if (head && match) {
          head.result.command = match[1] ?? null;
          const rows = match[3] ?? match[2];
          if (rows !== undefined) head.result.rowCount = Number.parseInt(rows, 10);
        }
        return;
      }
      case "copyInResponse":
        // Postgres ignored the query's Sync while waiting for COPY data: after the CopyFail it
        // discards input until the next Sync, so one more is sent.
        this.socket.write(Buffer.concat([serialize.copyFail(NO_COPY_SOURCE), serialize.sync()]));
        return;
      case "error":
        if (head) head.error ??= message as DatabaseError;
        return;
      case "readyForQuery": {
        const done = this.sent.shift();
        this.inFlight -= 1;
        if (this.inFlight === 0 && this.outbox.length > 0) this.flush();
        if (done?.error) done.reject(done.error);
        else done?.resolve(done.result);
        return;
      }
      default:
        // parseComplete, bindComplete, noData, emptyQuery, copy data out, notices, notifications,
        // parameter status: nothing the answer needs.
        return;
    }
  }

  private startup(options: WireOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => this.fail(new Error(`timed out after ${options.connectTimeoutMs} ms connecting to Postgres`)),
        options.connectTimeoutMs,
      );
      const settle = (error?: Error) => {
        clearTimeout(timer);
        this.socket.off("close", onClose);
        if (error) {
          this.fail(error);
          reject(error);
        } else {
          this.handler = (message) => this.onQueryMessage(message);
          this.started = true;
          this.flush();
          resolve();
        }
      };
      const onClose = () => settle(this.broken ?? new Error("Connection terminated during startup"));
      this.socket.once("close", onClose);
      this.socket.once("connect", () => {
        const params: Record<string, string> = {
          user: options.user,
          database: options.database,
          application_name: options.applicationName,
        };
        if (options.statementTimeoutMs) params.statement_timeout = String(options.statementTimeoutMs);
        this.socket.write(serialize.startup(params));
      });
      let scram: ScramSession | undefined;
      let proof: ScramProof | undefined;
      this.handler = (message) => {
        try {
          const fields = message as unknown as Record<string, unknown>;
          switch (message.name) {
            case "authenticationCleartextPassword":
              this.socket.write(serialize.password(options.password));
              return;
            case "authenticationMD5Password":
              this.socket.write(
                serialize.password(md5Password(options.user, options.password, fields.salt as Uint8Array)),
              );
              return;
            case "authenticationSASL":
              scram = scramStart(fields.mechanisms as string[]);
              this.socket.write(serialize.sendSASLInitialResponseMessage("SCRAM-SHA-256", scram.clientFirst));
              return;
            case "authenticationSASLContinue":
              if (!scram) throw new Error("SCRAM: the server continued an exchange that was not started");
              proof = scramContinue(scram, options.password, fields.data as string);
              this.socket.write(serialize.sendSCRAMClientFinalMessage(proof.clientFinal));
              return;
            case "authenticationSASLFinal":
              if (!proof) throw new Error("SCRAM: the server finished an exchange that was not started");
              scramFinish(proof, fields.data as string);
              return;
            case "error":
              settle(message as DatabaseError);
              return;
            case "readyForQuery":
              settle();
              return;
            default:
              // authenticationOk, parameterStatus, backendKeyData, notices.
              return;
          }
        } catch (error) {
          settle(error instanceof Error ? error : new Error(String(error)));
        }
      };
    });
  }
}
