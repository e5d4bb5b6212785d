/**
 * The console's only script and stylesheet, bundled into the Worker and served from its own origin
 * (the CSP allows `'self'` and nothing inline). The script does one thing: while a run is running it
 * polls the run's progress JSON and updates the bars, pace and failures in place (DOM text only,
 * never HTML), then stops. Everything else is plain HTML forms and links.
 */
import { Hono } from "hono";
import type { ConsoleEnv } from "./guard.ts";

export const CONSOLE_JS = `"use strict";
(function () {
  var run = document.getElementById("run");
  if (!run) return;
  var url = run.getAttribute("data-progress-url");
  function set(id, value, max) {
    var bar = document.getElementById(id);
    if (!bar) return;
    bar.max = Math.max(1, max);
    bar.value = value;
    var text = document.getElementById(id + "-text");
    if (text) text.textContent = value + " / " + max;
  }
  function text(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = value;
  }
  function finished(c) {
    return (c.done || 0) + (c.failed || 0) + (c.drift || 0) + (c.skipped || 0);
  }
  function render(view) {
    run.setAttribute("data-status", view.run.status);
    text("run-status", view.run.status);
    set("overall", view.finished, view.run.total);
    view.phases.forEach(function (p) { set("phase-" + p.phase, finished(p.counts), p.total); });
    text("rate", view.rateText);
    text("eta", view.etaText);
    var body = document.getElementById("failures");
    if (!body) return;
    while (body.firstChild) body.removeChild(body.firstChild);
    view.run.failures.forEach(function (f) {
      var row = document.createElement("tr");
      [f.slug, f.status, f.migration || "\\u2014", f.error || "\\u2014"].forEach(function (v) {
        var cell = document.createElement("td");
        cell.textContent = v;
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (view) {
        if (view) render(view);
        if (!view || view.run.status === "running") setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  if (run.getAttribute("data-status") === "running") setTimeout(poll, 500);
})();
`;

export const CONSOLE_CSS = `:root{color-scheme:light;font-family:system-ui,sans-serif;line-height:1.45;color:#1b1f24;background:#fff}
body{margin:0}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px}
header{display:flex;flex-wrap:wrap;gap:12px;align-items:center;justify-content:space-between;padding:8px 16px;background:#0b3d62;color:#fff}
header a,header span{color:#fff}nav a{margin-right:16px;font-weight:600}
main{padding:16px;max-width:1100px;margin:0 auto}
h1{font-size:1.5rem;margin:.5rem 0 1rem}h2{font-size:1.15rem;margin-top:1.5rem}h3{font-size:1rem}
h3,p code{overflow-wrap:anywhere}
.scroll{overflow-x:auto}table{border-collapse:collapse;min-width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #c9d1d9}
a{color:#0a58a8}a:focus,button:focus,input:focus,select:focus,.scroll:focus{outline:3px solid #f2a900;outline-offset:2px}
button{font:inherit;padding:6px 12px;border:1px solid #0b3d62;background:#0b3d62;color:#fff;border-radius:4px;cursor:pointer}
button.danger{background:#a4161a;border-color:#a4161a}
.who{display:flex;gap:8px;align-items:center}.who button{background:#fff;color:#0b3d62}
.actions{display:flex;flex-wrap:wrap;gap:8px;margin-bottom:8px}form.action{display:inline-flex;gap:8px;align-items:center;flex-wrap:wrap}
.filters,.rollout,.signin{display:grid;grid-template-columns:max-content minmax(0,20rem);gap:8px;align-items:center}
.filters button,.rollout button,.rollout div,.signin button{grid-column:1/-1;justify-self:start}
.bar{display:grid;grid-template-columns:8rem minmax(0,1fr) 6rem;gap:8px;align-items:center;margin:6px 0}
progress,meter{width:100%;height:1.1rem}
.chart-row{display:grid;grid-template-columns:minmax(0,16rem) minmax(0,1fr);gap:8px;align-items:center}.chart dd{margin:0;display:flex;gap:8px;align-items:center}
.facts{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:4px 16px}.facts dd{margin:0;overflow-wrap:anywhere}
.error{border-left:4px solid #a4161a;padding:8px 12px;background:#fdf2f2}
@media (max-width:600px){.filters,.rollout,.signin{grid-template-columns:1fr}.bar,.chart-row{grid-template-columns:1fr}}
`;

/** The tab icon (without one a browser asks for /favicon.ico and logs the 404). */
export const CONSOLE_ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#0b3d62"/><path d="M4 4h8v2H9v6H7V6H4z" fill="#fff"/></svg>`;

export function assetRoutes() {
  const assets = new Hono<ConsoleEnv>();
  const serve = (body: string, type: string) => () =>
    new Response(body, { headers: { "content-type": type, "cache-control": "public, max-age=3600" } });
  assets.get("/assets/console.js", serve(CONSOLE_JS, "text/javascript; charset=utf-8"));
  assets.get("/assets/console.css", serve(CONSOLE_CSS, "text/css; charset=utf-8"));
  assets.get("/assets/icon.svg", serve(CONSOLE_ICON, "image/svg+xml"));
  return assets;
}
