/**
 * `tenantry export SLUG` and `tenantry exports …`: tenant database exports through the admin API
 * (src/control/export). An export is queued; `--wait` polls GET /v1/exports/{id} until it is
 * complete or failed; `--output FILE` (implies --wait) asks for a short-lived signed link on the
 * tenant's own host and downloads the .sql.gz through it, then checks the file against the export's
 * manifest (gzip size, and the SQL size once decompressed) before printing how to restore it.
 *
 * The download is written to FILE.part and renamed only once verified, so an interrupted or corrupt
 * download never leaves a complete-looking file. Like the admin client, requests to a `*.localhost`
 * host go to 127.0.0.1 through node:http with the Host header set explicitly.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { resolve } from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { createGunzip } from "node:zlib";
import type { ExportView, Manifest } from "../control/export/service.ts";
import { type AdminClient, ApiError, type Problem, UnreachableError } from "./admin-client.ts";
import { table } from "./format.ts";

export interface ExportCommandDeps {
  /** The admin API client (token minted or read from the environment). */
  readonly client: () => Promise<AdminClient>;
  /** Builds the error the caller reports as a usage error (exit code 2). */
  readonly usageError: (message: string) => Error;
}

type ExportDetail = ExportView & { manifest: Manifest | null };

const POLL_MS = 500;
/** Consecutive unreachable polls tolerated while waiting (a wrangler reload, a blip). */
const MAX_POLL_ERRORS = 10;
const HEARTBEAT_MS = 10_000;
const DOWNLOAD_IDLE_MS = 120_000;

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const settled = (status: string) => status !== "pending" && status !== "running";

export function size(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return "-";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function printExports(items: readonly ExportView[]): void {
  if (items.length === 0) {
    console.log("no exports");
    return;
  }
  console.log(
    table([
      ["ID", "KIND", "STATUS", "CREATED", "ROWS", "GZIP", "TABLES", "ERROR"],
      ...items.map((e) => [
        e.id,
        e.kind,
        e.status,
        e.createdAt,
        e.rows === null ? "-" : String(e.rows),
        size(e.bytes),
        e.tables === null ? "-" : String(e.tables),
        e.error ?? "",
      ]),
    ]),
  );
}

function printExport(e: ExportDetail): void {
  const lines: [string, string][] = [
    ["id", e.id],
    ["tenant", e.tenant],
    ["kind", e.kind],
    ["status", e.status],
    ["created", e.createdAt],
    ["finished", e.finishedAt ?? "-"],
  ];
  if (e.manifest) {
    lines.push(
      ["rows", String(e.manifest.rows)],
      ["tables", String(e.manifest.tables.length)],
      ["sql", size(e.manifest.sqlBytes)],
      ["gzip", `${size(e.manifest.object.bytes)} in ${e.manifest.object.parts} part(s)`],
      ["schema", e.manifest.schemaVersion ?? "-"],
      ["took", seconds(e.manifest.ms)],
    );
  }
  if (e.error) lines.push(["error", e.error]);
  console.log(table(lines));
}

const show = (api: AdminClient, id: string) => api.call<ExportDetail>("GET", `/v1/exports/${encodeURIComponent(id)}`);

/** Polls an export until it is complete, failed or expired; progress on stderr unless --json. */
async function waitForExport(api: AdminClient, initial: ExportDetail, json: boolean): Promise<ExportDetail> {
  const tty = Boolean(process.stderr.isTTY) && !json;
  const started = Date.now();
  let current = initial;
  let errors = 0;
  let lastLine = "";
  let lastAt = 0;
  const draw = (final: boolean) => {
    if (json) return;
    const line = `export ${current.id} of ${current.tenant}: ${current.status} (${seconds(Date.now() - started)})`;
    if (tty) process.stderr.write(`\r\x1b[K${line}${final ? "\n" : ""}`);
    else {
      const key = current.status;
      if (final || key !== lastLine || Date.now() - lastAt >= HEARTBEAT_MS) {
        console.error(line);
        lastLine = key;
        lastAt = Date.now();
      }
    }
  };
  const onInterrupt = () => {
    if (tty) process.stderr.write("\n");
    console.error(
      `stopped watching; export ${current.id} continues: tenantry exports show ${current.id} --wait, or tenantry exports list ${current.tenant}`,
    );
    process.exit(130);
  };
  process.once("SIGINT", onInterrupt);
  try {
    draw(settled(current.status));
    while (!settled(current.status)) {
      await sleep(POLL_MS);
      try {
        current = await show(api, current.id);
        errors = 0;
      } catch (error) {
        if (!(error instanceof UnreachableError) || ++errors > MAX_POLL_ERRORS) throw error;
        continue;
      }
      draw(settled(current.status));
    }
    return current;
  } finally {
    process.removeListener("SIGINT", onInterrupt);
  }
}

/** GET `url` through node:http(s); `*.localhost` goes to 127.0.0.1 with the Host header kept. */
function get(url: URL): Promise<IncomingMessage> {
  const loopbackAlias = url.hostname === "localhost" || url.hostname.endsWith(".localhost");
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolveResponse, reject) => {
    const req = send(
      {
        protocol: url.protocol,
        host: loopbackAlias ? "127.0.0.1" : url.hostname,
        port: url.port || (url.protocol === "https:" ? 443 : 80),
        path: `${url.pathname}${url.search}`,
        method: "GET",
        timeout: DOWNLOAD_IDLE_MS,
        headers: { host: url.host, accept: "application/gzip, application/problem+json" },
        ...(url.protocol === "https:" ? { servername: url.hostname } : {}),
      },
      resolveResponse,
    );
    req.on("timeout", () =>
      req.destroy(new UnreachableError(`${url.host} did not answer within ${DOWNLOAD_IDLE_MS} ms`)),
    );
    req.on("error", (error: NodeJS.ErrnoException) =>
      reject(
        error instanceof UnreachableError
          ? error
          : new UnreachableError(`cannot download from ${url.host} (${error.code ?? error.message})`),
      ),
    );
    req.end();
  });
}

async function problemOf(res: IncomingMessage): Promise<ApiError> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  let parsed: Partial<Problem> = {};
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Partial<Problem>;
  } catch {
    // not JSON: keep the status
  }
  const status = res.statusCode ?? 0;
  return new ApiError({ ...parsed, status, code: parsed.code ?? `http_${status}` } as Problem);
}

export interface Downloaded {
  readonly file: string;
  readonly bytes: number;
  readonly sqlBytes: number;
}

/** Downloads a complete export to `output` through a signed link and checks it against the manifest. */
async function download(api: AdminClient, done: ExportDetail, output: string, json: boolean): Promise<Downloaded> {
  const manifest = done.manifest;
  if (done.status !== "complete" || !manifest)
    throw new Error(`export ${done.id} is ${done.status}: nothing to download`);
  const link = await api.call<{ url: string; expiresAt: string }>(
    "POST",
    `/v1/exports/${encodeURIComponent(done.id)}/link`,
  );
  const file = resolve(output);
  const partial = `${file}.part`;
  const res = await get(new URL(link.url));
  if (res.statusCode !== 200) throw await problemOf(res);
  const tty = Boolean(process.stderr.isTTY) && !json;
  let bytes = 0;
  let drawn = 0;
  res.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    if (tty && Date.now() - drawn > 200) {
      drawn = Date.now();
      process.stderr.write(`\r\x1b[Kdownloading ${size(bytes)} of ${size(manifest.object.bytes)}`);
    }
  });
  try {
    await pipeline(res, createWriteStream(partial));
    if (tty) process.stderr.write("\r\x1b[K");
    if (bytes !== manifest.object.bytes)
      throw new Error(`the download is ${bytes} bytes, the manifest says ${manifest.object.bytes}: try again`);
    // The whole file decompresses, to exactly the SQL the export wrote.
    let sqlBytes = 0;
    await pipeline(
      createReadStream(partial),
      createGunzip(),
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          sqlBytes += chunk.length;
          callback();
        },
      }),
    );
    if (sqlBytes !== manifest.sqlBytes)
      throw new Error(`the file holds ${sqlBytes} bytes of SQL, the manifest says ${manifest.sqlBytes}: try again`);
    await rename(partial, file);
    return { file, bytes, sqlBytes };
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}

function restoreHint(file: string, slug: string): string {
  const database = slug.replaceAll("-", "_");
  return `restore it into a new, empty database:
  createdb ${database}
  gunzip -c ${file} | psql -v ON_ERROR_STOP=1 -d ${database}`;
}

/** Waits (if asked), downloads (if asked) and reports; resolves with the exit code. */
async function follow(
  api: AdminClient,
  initial: ExportDetail,
  options: { wait: boolean; output?: string | undefined; json: boolean },
): Promise<number> {
  const last = options.wait || options.output ? await waitForExport(api, initial, options.json) : initial;
  const ok = last.status === "complete" || !settled(last.status);
  let downloaded: Downloaded | undefined;
  if (options.output && last.status === "complete") {
    try {
      downloaded = await download(api, last, options.output, options.json);
    } catch (error) {
      // A deleted tenant's hosts are gone, and signed links live on them: its final export is
      // fetched from R2 by an operator instead.
      if (error instanceof ApiError && error.problem.code === "tenant_not_found" && last.manifest) {
        throw new Error(
          `${last.tenant} no longer has a host to serve download links (deleted?); fetch the export from R2 instead:\n  npx wrangler r2 object get tenantry-exports/${last.manifest.object.key} --file ${options.output} --remote   (--local with npm run dev)`,
        );
      }
      throw error;
    }
  }
  if (options.json) {
    console.log(JSON.stringify(downloaded ? { ...last, download: downloaded } : last, null, 2));
    return ok ? 0 : 1;
  }
  printExport(last);
  if (!settled(last.status)) {
    console.log(`\nwatch it: tenantry exports show ${last.id} --wait`);
  } else if (last.status === "failed") {
    console.log(`\nthe export failed; try again: tenantry export ${last.tenant} --wait`);
  } else if (downloaded) {
    console.log(
      `\nwrote ${downloaded.file} (${size(downloaded.bytes)} gzip, ${size(downloaded.sqlBytes)} of SQL, checked against the manifest)`,
    );
    console.log(restoreHint(downloaded.file, last.tenant));
  } else if (last.status === "complete") {
    console.log(`\ndownload it: tenantry exports download ${last.id} --output ${last.tenant}.sql.gz`);
  }
  return ok ? 0 : 1;
}

/** `tenantry export SLUG [--wait] [--output FILE] [--json]`; resolves with the exit code. */
export async function exportCommand(args: string[], deps: ExportCommandDeps): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      json: { type: "boolean", default: false },
      wait: { type: "boolean", default: false },
      output: { type: "string", short: "o" },
    },
  });
  const slug = positionals[0];
  if (!slug) throw deps.usageError("export needs a tenant SLUG");
  if (positionals.length > 1) throw deps.usageError("export takes one SLUG");
  if (values.output === "") throw deps.usageError("--output needs a FILE");
  const api = await deps.client();
  const queued = await api.call<ExportView>("POST", `/v1/tenants/${encodeURIComponent(slug)}/exports`);
  if (!values.json) console.error(`queued export ${queued.id} of ${slug}`);
  return follow(api, { ...queued, manifest: null }, { wait: values.wait, output: values.output, json: values.json });
}

/** `tenantry exports <list|show|download> …`; resolves with the exit code. */
export async function exportsCommand(args: string[], deps: ExportCommandDeps): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      json: { type: "boolean", default: false },
      wait: { type: "boolean", default: false },
      output: { type: "string", short: "o" },
    },
  });
  const [target] = positionals;
  switch (sub) {
    case "list": {
      if (!target) throw deps.usageError("exports list needs a tenant SLUG");
      const { items } = await (await deps.client()).call<{ items: ExportView[] }>(
        "GET",
        `/v1/tenants/${encodeURIComponent(target)}/exports`,
      );
      if (values.json) console.log(JSON.stringify(items, null, 2));
      else printExports(items);
      return 0;
    }
    case "show":
    case "download": {
      if (!target) throw deps.usageError(`exports ${sub} needs an export ID (see tenantry exports list SLUG)`);
      if (sub === "download" && !values.output) throw deps.usageError("exports download needs --output FILE");
      const api = await deps.client();
      return follow(api, await show(api, target), { wait: values.wait, output: values.output, json: values.json });
    }
    default:
      throw deps.usageError(`unknown exports command ${JSON.stringify(sub ?? "")}`);
  }
}
