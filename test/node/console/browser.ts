/**
 * Headless Chromium from the system's packages (no browser download), driven by playwright-core,
 * with what every console page is checked for: console errors and CSP violations collected per
 * page, and axe-core (injected through the DevTools protocol, which the page's CSP does not govern)
 * reporting WCAG 2.x A/AA violations.
 */

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { type Browser, chromium, type Page } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright gives every launch a fresh temporary --user-data-dir of its own.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 120_000,
  });
}

/** Console errors, uncaught exceptions and CSP violations of a page, as text. */
export function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console: ${msg.text()} (${msg.location().url})`);
  });
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  // CSP violations are console errors in Chromium already; this also catches any it would not print.
  void page.addInitScript({
    content: `document.addEventListener("securitypolicyviolation", (e) => console.error("csp-violation " + e.violatedDirective + " " + e.blockedURI));`,
  });
  return problems;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** axe-core's WCAG 2.0/2.1 level A and AA violations on the page as loaded: rule id → node count. */
export async function axeViolations(page: Page): Promise<Record<string, number>> {
  await page.evaluate(axeSource);
  const violations = (await page.evaluate(`axe
    .run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } })
    .then((result) => result.violations.map((v) => [v.id, v.nodes.length]))`)) as [string, number][];
  return Object.fromEntries(violations);
}
