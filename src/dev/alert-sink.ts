/**
 * The alert webhook of `npm run dev` (ALERT_WEBHOOK_URL in .dev.vars): prints each alert the Worker
 * POSTs (fleet runs, domains turning moved, blocked or failing validation) and lists them at
 * `GET /alerts`, so the flow can be watched and checked without an outside service.
 */
import { serveApp } from "./serve-app.ts";

export interface AlertSink {
  readonly url: string;
  readonly received: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startAlertSink(port = 0, print: (line: string) => void = console.log): Promise<AlertSink> {
  const received: Record<string, unknown>[] = [];
  const served = await serveApp(async (request) => {
    const path = new URL(request.url).pathname;
    if (request.method === "GET" && path === "/alerts") return Response.json(received);
    if (request.method !== "POST" || path !== "/alerts") return new Response("not found", { status: 404 });
    const body = (await request.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (!body || typeof body !== "object") return new Response("expected a JSON object", { status: 400 });
    received.push(body);
    print(`• alert received: ${JSON.stringify(body)}`);
    return new Response(null, { status: 204 });
  }, port);
  return { url: `http://127.0.0.1:${served.port}/alerts`, received, close: served.close };
}
