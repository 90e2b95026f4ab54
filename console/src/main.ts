// The console's shell: the navigation, the router (`#/page/arguments`; the links the platform
// mails, such as /verify-email?token=…, arrive as paths), and the live refresh of pages that
// show work in progress.

import { AuthService } from "../../sdk/typescript/src/gen/complianceiq/auth/v1/auth_pb.js";
import { h } from "./ui.js";
import * as session from "./session.js";
import {
  accountPage,
  forgotPasswordPage,
  invitationPage,
  resetPasswordPage,
  signInPage,
  signUpPage,
  singleSignOnPage,
  ssoPage,
  switchOrganization,
  verifyEmailPage,
} from "./pages/auth.js";
import { newOrganizationPage, organizationPage } from "./pages/organization.js";
import { instancePage, instancesPage } from "./pages/instances.js";
import { analysesPage, analysisPage } from "./pages/analyses.js";
import { insightsPage } from "./pages/insights.js";
import { overviewPage } from "./pages/overview.js";
import { apiKeysPage, auditPage, dashboardsPage, notificationsPage, webhooksPage, widgetsPage } from "./pages/more.js";

/** What a page gets: its arguments, where to draw, and a way to be refreshed while live. */
export interface PageContext {
  args: string[];
  main: HTMLElement;
  /** Calls `tick` every `ms` while the page is shown; a page stops it by returning false. */
  live: (ms: number, tick: () => Promise<boolean>) => void;
  /** Registers a cleanup for when the page is left (a stream to close). */
  onLeave: (cleanup: () => void) => void;
}

type Page = (context: PageContext) => Promise<void>;

const PUBLIC: Record<string, Page> = {
  "sign-in": signInPage,
  "sign-up": signUpPage,
  "forgot-password": forgotPasswordPage,
  "single-sign-on": singleSignOnPage,
};

const PAGES: [string, string, Page][] = [
  ["overview", "Overview", overviewPage],
  ["organization", "Organization", organizationPage],
  ["instances", "Instances", instancesPage],
  ["analyses", "Analyses", analysesPage],
  ["insights", "Insights", insightsPage],
  ["dashboards", "Reports", dashboardsPage],
  ["widgets", "Widgets", widgetsPage],
  ["notifications", "Notifications", notificationsPage],
  ["audit", "Audit trail", auditPage],
  ["webhooks", "Webhooks", webhooksPage],
  ["api-keys", "API keys", apiKeysPage],
  ["account", "Account", accountPage],
];

const HIDDEN: Record<string, Page> = {
  instance: instancePage,
  analysis: analysisPage,
  "new-organization": newOrganizationPage,
};

let leaving: (() => void)[] = [];
let generation = 0;

function navigation(active: string): HTMLElement {
  return h(
    "nav",
    { "aria-label": "Console" },
    h(
      "ul",
      {},
      ...PAGES.map(([id, title]) =>
        h("li", {}, h("a", { href: `#/${id}`, "aria-current": id === active ? "page" : undefined }, title)),
      ),
    ),
  );
}

/** The organizations the person belongs to, to switch between (filled once listed). */
function switcher(): HTMLElement {
  const select = h("select", { id: "organization-switcher", "aria-label": "Organization" });
  const holder = h("span", { class: "switcher", hidden: true }, select);
  void session
    .client(AuthService)
    .listAccountOrganizations({})
    .then(({ organizations }) => {
      if (organizations.length < 2) return;
      select.replaceChildren(
        ...organizations.map((o) => h("option", { value: o.organizationId }, o.displayName || o.organizationId)),
      );
      select.value = session.organizationId();
      holder.hidden = false;
    })
    .catch(() => undefined);
  select.addEventListener("change", async () => {
    select.disabled = true;
    try {
      await switchOrganization(select.value);
      window.location.hash = "#/overview";
      void route();
    } catch {
      select.value = session.organizationId();
      select.disabled = false;
    }
  });
  return holder;
}

function header(): HTMLElement {
  const claims = session.claims();
  return h(
    "header",
    { class: "top" },
    h("a", { href: "#/overview", class: "brand" }, "ComplianceIQ"),
    session.signedIn() &&
      h(
        "div",
        { class: "who" },
        session.organizationId() && switcher(),
        h("span", { class: "muted" }, String(claims.email ?? "")),
        h(
          "button",
          {
            type: "button",
            class: "link",
            onclick: async () => {
              const refreshToken = session.refreshToken();
              session.signOut();
              await session.publicClient(AuthService).logout({ refreshToken }).catch(() => undefined);
              window.location.hash = "#/sign-in";
            },
          },
          "Sign out",
        ),
      ),
  );
}

/** Draws the page the location names. */
async function route() {
  for (const cleanup of leaving) cleanup();
  leaving = [];
  const mine = ++generation;
  const path = window.location.pathname;
  const token = new URLSearchParams(window.location.search).get("token") ?? "";
  // Links from mail: handled once, then the address becomes the console's own.
  const mailed: Record<string, Page> = {
    "/verify-email": verifyEmailPage,
    "/reset-password": resetPasswordPage,
    "/invitations/accept": invitationPage,
    "/forgot-password": forgotPasswordPage,
    "/sso": ssoPage,
  };
  const [name, ...args] = window.location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  let page: Page | undefined;
  let active = name;
  if (mailed[path]) {
    page = mailed[path];
    args.splice(0, args.length, token);
    active = "";
  } else if (PUBLIC[name]) {
    page = PUBLIC[name];
  } else if (!session.signedIn()) {
    window.location.hash = "#/sign-in";
    return;
  } else if (!session.organizationId() && name !== "account") {
    page = newOrganizationPage;
    active = "";
  } else {
    page = PAGES.find(([id]) => id === name)?.[2] ?? HIDDEN[name];
    if (!page) {
      window.location.hash = "#/overview";
      return;
    }
  }
  const main = h("main", { id: "main", tabindex: -1 });
  const shell = session.signedIn() && !PUBLIC[name] ? [header(), h("div", { class: "layout" }, navigation(active), main)] : [header(), main];
  document.body.replaceChildren(h("a", { href: "#main", class: "skip" }, "Skip to content"), ...shell);
  const context: PageContext = {
    args,
    main,
    live: (ms, tick) => {
      const timer = window.setInterval(async () => {
        if (mine !== generation) return window.clearInterval(timer);
        if (!(await tick().catch(() => false))) window.clearInterval(timer);
      }, ms);
      leaving.push(() => window.clearInterval(timer));
    },
    onLeave: (cleanup) => leaving.push(cleanup),
  };
  await page(context);
  document.title = `${main.querySelector("h1")?.textContent ?? "Console"} · ComplianceIQ`;
}

/** Leaves a mailed link's path for the console's own address (the page stays as drawn). */
export function leaveMailedLink(hash: string) {
  window.history.replaceState(null, "", `/${hash}`);
}

window.addEventListener("hashchange", () => void route());
void route();
