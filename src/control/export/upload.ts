/**
 * The R2 side of an export: the engine's SQL, gzip-compressed (CompressionStream) into an R2
 * multipart upload with equal parts of PART_BYTES (R2 wants every part but the last the same size,
 * ≥ 5 MiB). A failed or interrupted upload is aborted, so it never shows up as an object at all.
 *
 * Memory: one part buffer plus what the compressor holds. Backpressure is explicit:
 * CompressionStream's writable side accepts input whether or not its output is read (in Node and in
 * workerd alike), so piping the source through it read the whole dump into memory ahead of the
 * uploads. Instead no input is written while a part is being uploaded, and every YIELD_BYTES of
 * input the producer waits for the output to be consumed.
 */

export const PART_BYTES = 5 * 1024 * 1024;
/** Input written to the compressor between two yields to the event loop (see produce). */
const YIELD_BYTES = 1024 * 1024;

/** The R2 operations exports need (an R2Bucket satisfies it). */
export interface ExportBucket {
  createMultipartUpload(
    key: string,
    options?: { httpMetadata?: { contentType?: string; contentEncoding?: string } },
  ): Promise<MultipartUpload>;
  put(key: string, value: string, options?: { httpMetadata?: { contentType?: string } }): Promise<unknown>;
  head(key: string): Promise<unknown | null>;
  delete(keys: string | string[]): Promise<void>;
}

interface MultipartUpload {
  uploadPart(partNumber: number, value: ArrayBuffer | Uint8Array): Promise<{ partNumber: number; etag: string }>;
  complete(parts: { partNumber: number; etag: string }[]): Promise<unknown>;
  abort(): Promise<void>;
}

type AfterPart = ((partNumber: number) => Promise<void> | void) | undefined;

/**
 * The compressor's output side: fills a part buffer and uploads each full part in turn. The
 * producer reads its state (`uploading`, `writes`) to hold input back; `failure` keeps the first
 * upload error, which is the one worth reporting.
 */
class PartUploader {
  readonly parts: { partNumber: number; etag: string }[] = [];
  /** Compressed bytes received so far. */
  total = 0;
  /** Bytes in the current part buffer. */
  filled = 0;
  /** The part upload in flight, if any: the producer waits for it. */
  uploading: Promise<void> | undefined;
  failure: { error: unknown } | undefined;
  /** Writes received: unchanged across a task means the output has been consumed. */
  writes = 0;
  private buffer: Uint8Array;
  private readonly upload: MultipartUpload;
  private readonly partBytes: number;
  private readonly afterPart: AfterPart;

  constructor(upload: MultipartUpload, partBytes: number, afterPart: AfterPart) {
    this.upload = upload;
    this.partBytes = partBytes;
    this.afterPart = afterPart;
    this.buffer = new Uint8Array(partBytes);
  }

  /** The stream the compressor's output is piped to. */
  sink(): WritableStream<Uint8Array> {
    return new WritableStream<Uint8Array>({ write: (value) => this.write(value) });
  }

  /** Uploads the first `size` bytes of the buffer as the next part, and starts a new buffer. */
  async flush(size: number): Promise<void> {
    const partNumber = this.parts.length + 1;
    this.parts.push(await this.upload.uploadPart(partNumber, this.buffer.slice(0, size)));
    await this.afterPart?.(partNumber);
    this.buffer = new Uint8Array(this.partBytes);
    this.filled = 0;
  }

  private async write(value: Uint8Array): Promise<void> {
    this.writes += 1;
    let offset = 0;
    while (offset < value.length) {
      const take = Math.min(this.partBytes - this.filled, value.length - offset);
      this.buffer.set(value.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      this.total += take;
      if (this.filled === this.partBytes) {
        this.uploading = this.flush(this.partBytes);
        try {
          await this.uploading;
        } catch (error) {
          this.failure ??= { error };
          throw error;
        } finally {
          this.uploading = undefined;
        }
      }
    }
  }
}

/**
 * Streams `chunks` gzip-compressed into `key` as a multipart upload of equal PART_BYTES parts.
 * Aborts the upload on any failure.
 */
export async function uploadGzip(
  bucket: ExportBucket,
  key: string,
  chunks: AsyncIterable<string>,
  options: { partBytes?: number; afterPart?: AfterPart } = {},
): Promise<{ bytes: number; parts: number }> {
  const partBytes = options.partBytes ?? PART_BYTES;
  const upload = await bucket.createMultipartUpload(key, { httpMetadata: { contentType: "application/gzip" } });
  const out = new PartUploader(upload, partBytes, options.afterPart);
  const compressor = new CompressionStream("gzip");
  const piped = compressor.readable.pipeTo(out.sink());
  // Rejects as soon as the output side fails, so the producer never waits on a dead compressor.
  const outputFailed = piped.then(
    () => new Promise<never>(() => undefined),
    (error: unknown) => {
      throw out.failure?.error ?? error;
    },
  );
  outputFailed.catch(() => undefined);
  const writer = compressor.writable.getWriter();
  try {
    await produce(chunks, writer, out, outputFailed);
    await Promise.race([writer.close(), outputFailed]);
    await piped;
    if (out.filled > 0 || out.parts.length === 0) await out.flush(out.filled);
    await upload.complete(out.parts);
    return { bytes: out.total, parts: out.parts.length };
  } catch (error) {
    await writer.abort(error).catch(() => undefined);
    await upload.abort().catch(() => undefined);
    throw out.failure?.error ?? error;
  }
}

/** Writes `chunks` into the compressor, holding input back while `out` is behind (see above). */
async function produce(
  chunks: AsyncIterable<string>,
  writer: { write(chunk: Uint8Array): Promise<void> },
  out: PartUploader,
  outputFailed: Promise<never>,
): Promise<void> {
  const encoder = new TextEncoder();
  let sinceYield = 0;
  let writing: Promise<void> | undefined;
  for await (const text of chunks) {
    while (out.uploading) await Promise.race([out.uploading, outputFailed]);
    if (!text) continue;
    const bytes = encoder.encode(text);
    // One write in flight: Node compresses on another thread, so the next chunk is made meanwhile.
    if (writing) await Promise.race([writing, outputFailed]);
    writing = writer.write(bytes);
    writing.catch(() => undefined);
    // workerd hands the compressed output on in later tasks: every YIELD_BYTES of input, wait
    // until a task passes with the sink idle (output consumed, no upload in flight), so at most
    // ~YIELD_BYTES of input is compressed and unread at any time.
    sinceYield += bytes.length;
    if (sinceYield >= YIELD_BYTES) {
      sinceYield = 0;
      for (let seen = -1; seen !== out.writes || out.uploading; ) {
        seen = out.writes;
        if (out.uploading) await Promise.race([out.uploading, outputFailed]);
        await Promise.race([new Promise((resolve) => setTimeout(resolve, 0)), outputFailed]);
      }
    }
  }
  if (writing) await Promise.race([writing, outputFailed]);
}
