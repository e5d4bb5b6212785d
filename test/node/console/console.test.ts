/**
 * The operator console in a real browser: headless Chromium (system package, playwright-core)
 * against the Worker in miniflare, embedded Postgres behind the gateway, queues running the fleet.
 * Signs in with a dev admin token, reads the fleet, suspends a tenant (its host then answers 403
 * tenant_suspended), runs a rollout whose progress bar advances to the end with one failing tenant,
 * maps a custom domain through the fake Cloudflare API (pending, with its DNS records on the tenant
 * page and counted as pending on the fleet page), then removes it, and checks that a CSRF-less
 * POST, a cross-origin POST and a read-only identity are refused.
 * Every page is checked for console errors, CSP violations and axe-core A/AA violations, and the
 * fleet, rollout and tenant pages are saved as screenshots under test-results/console/.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { asc, eq } from "drizzle-orm";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectRoot } from "../../../src/cli/project-config.ts";
import { tenants } from "../../../src/control/schema.ts";
import { createTenant } from "../../../src/control/tenants/create.ts";
import { type FakeCloudflare, startFakeCloudflareApi } from "../../../src/dev/fake-cloudflare/server.ts";
import { migrations } from "../../../src/generated/migrations.ts";
import { ALL_ADMIN_SCOPES } from "../../../src/shared/tokens.ts";
import { gatewayUrl, postgresUrl, superuser } from "../support.ts";
import { axeViolations, launchChromium, watchProblems } from "./browser.ts";
import { type ServedWorker, serveWorker } from "./harness.ts";

const TAG = `ui${Math.random().toString(36).slice(2, 6)}`;
const CONTROL = `tenantry_control_${TAG}`;
const SHOTS = join(projectRoot, "test-results", "console");
const FIRST = migrations[0]?.name as string;
const LATEST = migrations.at(-1)?.name as string;
/** Up to date: the shop whose suspension is checked at its host. */
const SHOP = `${TAG}-shop`;
/** Behind (at the first migration): the rollout's fleet; `failing` cannot take the next migration. */
const FLEET = Array.from({ length: 5 }, (_, i) => `${TAG}-f${i}`);
const WAIT = { timeout: 120_000 };
/** Mapped from the shop's page through the fake Cloudflare API: pending until its DNS is in place. */
const CUSTOM = `www.${TAG}-shop.example`;
const FALLBACK = "customers.tenantry.localhost";
/** What Tab can land on. */
const FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea, [tabindex='0']";

let worker: ServedWorker;
let cloudflare: FakeCloudflare;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let problems: string[];
/**
 * The fleet tenant that fails: the last of them by id. The canary is the first tenant by id and a
 * failing canary halts the run before any wave, so the failing tenant must never be the canary.
 */
let failing: string;

async function tenantStatus(slug: string) {
  const [row] = await worker.deps.db.select().from(tenants).where(eq(tenants.slug, slug));
  return row?.status;
}

async function signIn(into: BrowserContext, scope: string, sub: string): Promise<Page> {
  const tab = await into.newPage();
  await tab.goto(`${worker.adminOrigin}/`, WAIT);
  expect(new URL(tab.url()).pathname).toBe("/sign-in");
  await tab.fill("#token", await worker.token(sub, scope));
  await Promise.all([tab.waitForURL(`${worker.adminOrigin}/`, WAIT), tab.click("button[type=submit]")]);
  return tab;
}

/** No A/AA violations, no console errors, no CSP violations on the page as it is now. */
async function expectClean(tab: Page, seen: string[]) {
  expect(await axeViolations(tab)).toEqual({});
  expect(seen).toEqual([]);
}

describe("operator console in Chromium", () => {
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    // Never active within the test (an hour): the mapped domain stays pending with its DNS records.
    cloudflare = await startFakeCloudflareApi({ activateAfterMs: 3_600_000, fallbackOrigin: FALLBACK });
    worker = await serveWorker({
      postgresUrl: postgresUrl(),
      gatewayUrl: gatewayUrl(),
      controlName: CONTROL,
      vars: {
        CLOUDFLARE_API_URL: cloudflare.url,
        CLOUDFLARE_API_TOKEN: cloudflare.apiToken,
        CLOUDFLARE_ZONE_ID: "zone",
      },
    });
    await createTenant(worker.deps, { slug: SHOP, region: "eu-central", domains: [`${SHOP}.localhost`] });
    const behind = { ...worker.deps, tenantBundle: migrations.slice(0, 1) };
    for (const slug of FLEET) await createTenant(behind, { slug, region: "local" });
    const byId = await worker.deps.db.select({ slug: tenants.slug }).from(tenants).orderBy(asc(tenants.id));
    failing = byId
      .map((t) => t.slug)
      .filter((slug) => FLEET.includes(slug))
      .at(-1) as string;
    // 0001 adds products.image_url: a column already there makes that tenant's migration fail.
    await superuser(
      (client) => client.query("ALTER TABLE products ADD COLUMN image_url text"),
      `tenant_${failing.replaceAll("-", "_")}`,
    );
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await signIn(context, ALL_ADMIN_SCOPES, "ops@example.com");
    problems = watchProblems(page);
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await cloudflare?.close();
    await superuser(async (client) => {
      for (const slug of [SHOP, ...FLEET]) {
        const name = `tenant_${slug.replaceAll("-", "_")}`;
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await client.query(`DROP ROLE IF EXISTS "${name}_app"`);
      }
      await client.query(`DROP DATABASE IF EXISTS "${CONTROL}" WITH (FORCE)`);
    }).catch(() => undefined);
  }, 120_000);

  it("signs in into an HttpOnly, Secure, SameSite=Strict session and shows the fleet's tenants and versions", async () => {
    const [cookie] = (await context.cookies()).filter((c) => c.name.includes("tenantry-console"));
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: "Strict" });
    await page.goto(`${worker.adminOrigin}/`, WAIT);
    expect(await page.textContent("#behind")).toBe(String(FLEET.length));
    const chart = await page.$$eval(".chart-row", (rows) =>
      rows.map((row) => [
        row.querySelector("dt")?.textContent,
        Number(row.querySelector("meter")?.getAttribute("value")),
      ]),
    );
    expect(chart).toEqual(
      expect.arrayContaining([
        [FIRST, FLEET.length],
        [LATEST, 1],
      ]),
    );
    await page.screenshot({ path: join(SHOTS, "fleet.png"), fullPage: true });
    await expectClean(page, problems);

    await page.goto(`${worker.adminOrigin}/tenants?region=local`, WAIT);
    const listed = await page.$$eval("tbody a", (links) => links.map((a) => a.textContent));
    expect(listed).toEqual(expect.arrayContaining(FLEET));
    expect(listed).not.toContain(SHOP);
    await expectClean(page, problems);
  });

  it("suspends a tenant from its page: its host answers 403 tenant_suspended, the audit names the operator", async () => {
    expect((await worker.get(`${SHOP}.localhost`, "/api/products")).status).not.toBe(403);
    await page.goto(`${worker.adminOrigin}/tenants/${SHOP}`, WAIT);
    await Promise.all([page.waitForURL(`**/tenants/${SHOP}`, WAIT), page.click("form[action$='/suspend'] button")]);
    expect(await page.textContent("#tenant-status")).toBe("suspended");
    const answer = await worker.get(`${SHOP}.localhost`, "/api/products");
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body)).toMatchObject({ code: "tenant_suspended" });
    const audit = await page.$$eval("#audit tr", (rows) =>
      rows.map((r) => [...r.children].map((td) => td.textContent)),
    );
    expect(audit[0]?.slice(1)).toEqual(["ops@example.com", "tenant.suspend", "ok"]);
    await page.screenshot({ path: join(SHOTS, "tenant.png"), fullPage: true });
    await expectClean(page, problems);
    await Promise.all([page.waitForURL(`**/tenants/${SHOP}`, WAIT), page.click("form[action$='/resume'] button")]);
    expect(await tenantStatus(SHOP)).toBe("active");
  });

  it("refuses a POST without the CSRF token and a cross-origin POST", async () => {
    // The signed-in page itself posting a form without the token (its session cookie goes along).
    await page.goto(`${worker.adminOrigin}/tenants/${SHOP}`, WAIT);
    const bare = await page.evaluate(async (path) => {
      const response = await fetch(path, { method: "POST", body: new URLSearchParams({ x: "1" }) });
      return { status: response.status, body: await response.text() };
    }, `/tenants/${SHOP}/suspend`);
    expect(bare.status).toBe(403);
    expect(bare.body).toContain('id="error-code">csrf_failed<');
    // Chromium logs the refused fetch as a failed resource: expected here, and nothing else.
    expect(problems.every((p) => p.includes("status of 403"))).toBe(true);
    problems.length = 0;
    const csrf = await page.getAttribute("form[action$='/suspend'] input[name=_csrf]", "value");
    expect(csrf).toBeTruthy();
    // A page on another origin submitting the console's own form, token included.
    const attacker = await context.newPage();
    await attacker.setContent(
      `<form method="post" action="${worker.adminOrigin}/tenants/${SHOP}/suspend"><input name="_csrf" value="${csrf}"><button>go</button></form>`,
    );
    const [response] = await Promise.all([attacker.waitForNavigation(WAIT), attacker.click("button")]);
    expect(response?.status()).toBe(403);
    expect(await attacker.textContent("#error-code")).toBe("csrf_failed");
    await attacker.close();
    expect(await tenantStatus(SHOP)).toBe("active");
  });

  it("maps a domain from the tenant page: pending, with its DNS records, counted as pending on the fleet", async () => {
    await page.goto(`${worker.adminOrigin}/tenants/${SHOP}`, WAIT);
    await page.fill("#domain", CUSTOM);
    await Promise.all([page.waitForURL(`**/tenants/${SHOP}`, WAIT), page.click("form[action$='/domains'] button")]);
    expect(cloudflare.hostnames()).toEqual([CUSTOM]);
    const rows = async () =>
      page.$$eval("#domains tr", (trs) => trs.map((tr) => [...tr.children].slice(0, 4).map((td) => td.textContent)));
    expect(await rows()).toEqual([
      [`${SHOP}.localhost`, "active", "not needed", "none"],
      [CUSTOM, "pending", "pending_validation", "none"],
    ]);
    const dnsTable = `#dns-${CUSTOM.replaceAll(".", "-")} tbody tr`;
    const records = await page.$$eval(dnsTable, (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    expect(records[0]).toEqual(["CNAME", CUSTOM, FALLBACK]);
    expect(records.map((r) => [r[0], r[1]])).toEqual(
      expect.arrayContaining([
        ["TXT", `_cf-custom-hostname.${CUSTOM}`],
        ["TXT", `_acme-challenge.${CUSTOM}`],
      ]),
    );
    // Only the pending domain has records to publish; the active one has none.
    expect(await page.$$(`#dns-${SHOP}-localhost`)).toHaveLength(0);
    const audit = await page.$$eval("#audit tr", (trs) =>
      trs.map((tr) => [...tr.children].map((td) => td.textContent)),
    );
    expect(audit[0]?.slice(1)).toEqual(["ops@example.com", "domain.add", "ok"]);
    await page.screenshot({ path: join(SHOTS, "tenant.png"), fullPage: true });
    await expectClean(page, problems);
    // A narrow window (not a phone's zoomed layout): long values wrap or scroll inside their tables.
    await page.setViewportSize({ width: 375, height: 812 });
    const widths = await page.evaluate<number[]>("[document.documentElement.scrollWidth, window.innerWidth]");
    expect(widths[0]).toBeLessThanOrEqual(widths[1] as number);
    await page.setViewportSize({ width: 1280, height: 900 });

    // Checking it again re-triggers validation on Cloudflare; still pending, still audited.
    const before = cloudflare.calls.length;
    await Promise.all([
      page.waitForURL(`**/tenants/${SHOP}`, WAIT),
      page.click(`form[action$='/domains/${CUSTOM}/verify'] button`),
    ]);
    expect(cloudflare.calls.slice(before).some((call) => call.startsWith("PATCH "))).toBe(true);
    expect((await rows())[1]?.slice(0, 2)).toEqual([CUSTOM, "pending"]);

    await page.goto(`${worker.adminOrigin}/`, WAIT);
    expect(await page.textContent("#domains-active")).toBe("1");
    expect(await page.textContent("#domains-pending")).toBe("1");
    await page.screenshot({ path: join(SHOTS, "fleet.png"), fullPage: true });
    await expectClean(page, problems);
  });

  it("refuses a read-only identity's domain mapping with 403", async () => {
    const readOnly = await browser.newContext();
    const tab = await signIn(readOnly, "tenants:read", "viewer@example.com");
    await tab.goto(`${worker.adminOrigin}/tenants/${SHOP}`, WAIT);
    await tab.fill("#domain", `other.${CUSTOM}`);
    const [response] = await Promise.all([tab.waitForNavigation(WAIT), tab.click("form[action$='/domains'] button")]);
    expect(response?.status()).toBe(403);
    expect(await tab.textContent("#error-code")).toBe("forbidden");
    expect(cloudflare.hostnames()).toEqual([CUSTOM]);
    await readOnly.close();
  });

  it("unmaps the domain from the tenant page: its custom hostname is deleted and the fleet counts none pending", async () => {
    await page.goto(`${worker.adminOrigin}/tenants/${SHOP}`, WAIT);
    await Promise.all([
      page.waitForURL(`**/tenants/${SHOP}`, WAIT),
      page.click(`form[action$='/domains/${CUSTOM}/remove'] button`),
    ]);
    expect(cloudflare.hostnames()).toEqual([]);
    const listed = await page.$$eval("#domains tr td:first-child", (tds) => tds.map((td) => td.textContent));
    expect(listed).toEqual([`${SHOP}.localhost`]);
    await page.goto(`${worker.adminOrigin}/`, WAIT);
    expect(await page.textContent("#domains-pending")).toBe("0");
    expect(problems).toEqual([]);
  });

  it("refuses a read-only identity's suspend with 403", async () => {
    const readOnly = await browser.newContext();
    const tab = await signIn(readOnly, "tenants:read", "viewer@example.com");
    await tab.goto(`${worker.adminOrigin}/tenants/${SHOP}`, WAIT);
    const [response] = await Promise.all([tab.waitForNavigation(WAIT), tab.click("form[action$='/suspend'] button")]);
    expect(response?.status()).toBe(403);
    expect(await tab.textContent("#error-code")).toBe("forbidden");
    expect(await tenantStatus(SHOP)).toBe("active");
    await readOnly.close();
  });

  it("starts a rollout and follows its progress bar to the end, with the failing tenant's migration and error", async () => {
    await page.goto(`${worker.adminOrigin}/rollouts/new`, WAIT);
    expect(await page.textContent("#status")).toContain(`${FLEET.length} of`);
    await expectClean(page, problems);
    await page.fill("#canary", "1");
    await page.fill("#wave", "1");
    await page.fill("#concurrency", "1");
    await Promise.all([page.waitForURL("**/runs/run_*", WAIT), page.click("form.rollout button[type=submit]")]);
    const seen = new Set<number>();
    let midway = false;
    const sample = async () => {
      const value = Number(await page.getAttribute("#overall", "value"));
      seen.add(value);
      // The "in progress" screenshot: the first time the bar is neither empty nor full.
      if (!midway && value > 0 && value < FLEET.length + 1) {
        midway = true;
        await page.screenshot({ path: join(SHOTS, "rollout.png"), fullPage: true });
      }
    };
    await sample();
    await page.screenshot({ path: join(SHOTS, "rollout.png"), fullPage: true });
    await expectClean(page, problems);
    // The page polls by itself; the test only watches it (no reloads) until the run stops.
    await expect
      .poll(
        async () => {
          await sample();
          return page.getAttribute("#run", "data-status");
        },
        { timeout: 180_000, interval: 250 },
      )
      .not.toBe("running");
    const total = Number(await page.getAttribute("#overall", "max"));
    expect(total).toBe(FLEET.length + 1);
    expect(Number(await page.getAttribute("#overall", "value"))).toBe(total);
    expect(seen.size).toBeGreaterThan(1);
    expect(await page.textContent("#run-status")).toBe("halted");
    // Tenants finished: a measured pace, and no ETA for a run that has stopped.
    expect(await page.textContent("#rate")).toMatch(/^\d+(\.\d+)? tenants\/s$/);
    expect(await page.textContent("#eta")).toBe("none: the run is halted");
    const failures = await page.$$eval("#failures tr", (rows) =>
      rows.map((r) => [...r.children].map((td) => td.textContent)),
    );
    expect(failures).toHaveLength(1);
    expect(failures[0]?.slice(0, 3)).toEqual([failing, "failed", migrations[1]?.name]);
    expect(failures[0]?.[3]).toContain("image_url");
    expect(problems).toEqual([]);
  }, 240_000);
  it("can be used from the keyboard alone: every link, field and button is reached with Tab", async () => {
    await page.goto(`${worker.adminOrigin}/tenants/${SHOP}`, WAIT);
    const focusable = await page.$$eval(
      FOCUSABLE,
      (els) => els.filter((el) => (el as unknown as { offsetParent: unknown }).offsetParent !== null).length,
    );
    expect(focusable).toBeGreaterThan(8);
    const reached: string[] = [];
    for (let i = 0; i < focusable + 2; i++) {
      await page.keyboard.press("Tab");
      reached.push(
        await page.evaluate<string>(`(() => {
          const el = document.activeElement;
          if (!el || el === document.body) return "body";
          const label = el.getAttribute("aria-labelledby") || el.textContent.trim() || el.getAttribute("name");
          return el.tagName.toLowerCase() + ":" + label;
        })()`),
      );
    }
    // The skip link comes first and is shown while focused; then the navigation, then the actions.
    expect(reached[0]).toBe("a:Skip to content");
    await page.focus("a.skip");
    const skipBox = await page.$eval("a.skip", (a) => a.getBoundingClientRect().left);
    expect(skipBox).toBeGreaterThanOrEqual(0);
    expect(reached).toEqual(
      expect.arrayContaining([
        "a:Fleet",
        "a:Tenants",
        "a:New rollout",
        "button:Suspend",
        "input:confirm",
        "section:audit-h",
      ]),
    );
    expect(new Set(reached.filter((r) => r !== "body")).size).toBe(focusable);
    // Enter on a focused link follows it.
    await page.focus("nav a[href='/tenants']");
    await Promise.all([page.waitForURL(`${worker.adminOrigin}/tenants`, WAIT), page.keyboard.press("Enter")]);
    expect(problems).toEqual([]);
  });

  it("fits a phone's width on every page, with no console errors and no axe violations", async () => {
    const phone = await browser.newContext({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true });
    const tab = await signIn(phone, ALL_ADMIN_SCOPES, "ops@example.com");
    const seen = watchProblems(tab);
    for (const path of ["/", "/tenants", `/tenants/${SHOP}`, "/rollouts/new"]) {
      await tab.goto(`${worker.adminOrigin}${path}`, WAIT);
      const widths = await tab.evaluate<number[]>("[document.documentElement.scrollWidth, window.innerWidth]");
      expect(widths[0], `${path} is wider than the phone`).toBeLessThanOrEqual(widths[1] as number);
      await expectClean(tab, seen);
    }
    await tab.goto(`${worker.adminOrigin}/`, WAIT);
    await tab.screenshot({ path: join(SHOTS, "fleet-phone.png"), fullPage: true });
    await phone.close();
  });
  it("would notice a CSP violation: the watcher reports an image from another origin (control)", async () => {
    const tab = await context.newPage();
    const seen = watchProblems(tab);
    await tab.goto(`${worker.adminOrigin}/tenants`, WAIT);
    expect(seen).toEqual([]);
    await tab.evaluate(
      `document.body.appendChild(Object.assign(document.createElement("img"), { src: "https://example.invalid/x.png", alt: "" }))`,
    );
    await expect.poll(() => seen.join("\n")).toContain("csp-violation img-src");
    await tab.close();
  });
});
