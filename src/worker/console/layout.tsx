/**
 * The console's page frame and the small pieces every page shares: a skip link and landmarks for
 * keyboard and screen-reader users, the navigation, the one stylesheet and the one script (both
 * served from this origin: the CSP allows nothing else), and action forms that carry the CSRF token.
 */
import type { Child } from "hono/jsx";
import type { ConsoleSession } from "./session.ts";

export const ASSET_VERSION = "2";

export function Layout(props: { title: string; session?: ConsoleSession | undefined; children?: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · Tenantry console`}</title>
        <link rel="icon" href={`/assets/icon.svg?v=${ASSET_VERSION}`} type="image/svg+xml" />
        <link rel="stylesheet" href={`/assets/console.css?v=${ASSET_VERSION}`} />
        <script src={`/assets/console.js?v=${ASSET_VERSION}`} defer />
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header>
          <nav aria-label="Console">
            <a href="/">Fleet</a>
            <a href="/tenants">Tenants</a>
            <a href="/rollouts/new">New rollout</a>
          </nav>
          {props.session ? (
            <form method="post" action="/sign-out" class="who">
              <span>{props.session.sub}</span>
              <CsrfField session={props.session} />
              <button type="submit">Sign out</button>
            </form>
          ) : null}
        </header>
        <main id="main">
          <h1>{props.title}</h1>
          {props.children}
        </main>
      </body>
    </html>
  );
}

export function CsrfField(props: { session: ConsoleSession }) {
  return <input type="hidden" name="_csrf" value={props.session.csrf} />;
}

/** A one-button form posting to `action` (with the CSRF token), optionally with more fields. */
export function ActionForm(props: {
  action: string;
  label: string;
  session: ConsoleSession;
  danger?: boolean;
  children?: Child;
}) {
  return (
    <form method="post" action={props.action} class="action">
      <CsrfField session={props.session} />
      {props.children}
      <button type="submit" class={props.danger ? "danger" : undefined}>
        {props.label}
      </button>
    </form>
  );
}

/** A labelled native progress bar the console script keeps up to date (data-progress names the key). */
export function Bar(props: { id: string; label: string; value: number; max: number }) {
  return (
    <div class="bar">
      <label for={props.id}>{props.label}</label>
      <progress id={props.id} value={props.value} max={Math.max(1, props.max)}>
        {`${props.value} of ${props.max}`}
      </progress>
      <span id={`${props.id}-text`}>{`${props.value} / ${props.max}`}</span>
    </div>
  );
}
