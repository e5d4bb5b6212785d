/**
 * Helpers for the WebSocket suites: the driver pointed at the test gateway's `/v2` endpoint, and
 * COPY in both directions over a driver `Client`.
 *
 * COPY is done with two small "submittables" (objects with `submit(connection)` that node-postgres,
 * bundled in the driver, drives message by message) rather than pg-copy-streams: its COPY TO
 * pauses the connection's socket, and the driver's WebSocket-backed socket is an event emitter
 * with no `pause()`.
 */
import { type ClientBase, neonConfig } from "@neondatabase/serverless";
import ws from "ws";
import { applyLocalNeon } from "../../../src/shared/neon-local.ts";
import { gatewayUrl } from "../support.ts";

/** Driver settings for the test gateway; Node gets `ws` as its WebSocket (as Neon's docs advise). */
export function useGatewayWebSockets(): void {
  applyLocalNeon(neonConfig, { NEON_FETCH_ENDPOINT: gatewayUrl() });
  neonConfig.webSocketConstructor = ws;
}

/** The slice of node-postgres' Connection a COPY needs. */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

abstract class CopyQuery<T> {
  readonly done: Promise<T>;
  protected resolve!: (value: T) => void;
  private reject!: (error: unknown) => void;

  constructor(private readonly text: string) {
    this.done = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  submit(connection: CopyConnection): void {
    connection.query(this.text);
  }

  /** node-postgres detaches a query on its error, so this is its last call (no ReadyForQuery). */
  handleError(error: unknown): void {
    this.reject(error);
  }

  handleCommandComplete(): void {}

  handleReadyForQuery(): void {
    this.finish();
  }

  protected abstract finish(): void;
}

/** `COPY … TO STDOUT`: collects every CopyData message. */
class CopyOut extends CopyQuery<Buffer> {
  private readonly chunks: Buffer[] = [];

  handleCopyData(message: { chunk: Buffer }): void {
    // The parser's buffer is reused for the next message: keep a copy, not a view.
    this.chunks.push(Buffer.from(message.chunk));
  }

  protected finish(): void {
    this.resolve(Buffer.concat(this.chunks));
  }
}

/** `COPY … FROM STDIN`: sends `data` in chunks once the server asks for it. */
class CopyIn extends CopyQuery<void> {
  constructor(
    text: string,
    private readonly data: Buffer,
    private readonly chunkBytes: number,
  ) {
    super(text);
  }

  handleCopyInResponse(connection: CopyConnection): void {
    for (let offset = 0; offset < this.data.length; offset += this.chunkBytes) {
      connection.sendCopyFromChunk(this.data.subarray(offset, offset + this.chunkBytes));
    }
    connection.endCopyFrom();
  }

  protected finish(): void {
    this.resolve();
  }
}

export async function copyOut(client: ClientBase, text: string): Promise<Buffer> {
  const query = new CopyOut(text);
  void client.query(query as never);
  return query.done;
}

export async function copyIn(client: ClientBase, text: string, data: Buffer, chunkBytes = 64 * 1024): Promise<void> {
  const query = new CopyIn(text, data, chunkBytes);
  void client.query(query as never);
  return query.done;
}
