// The console end to end in a real browser (Debian's Chromium, driven by playwright-core)
// against a running `complianceiq dev`: sign up, verify the address from the dev mailbox,
// create an organization, connect the ServiceNow simulator, sync it, run an analysis and check
// that the page shows the numbers the REST API gives; turn on two-factor authentication and
// sign in with a code; then a forged token, refused by the platform, and the page saying so.
// With CIQ_SCREENSHOTS set, a screenshot of every page goes there (docs/console in the
// repository: `make console-screenshots`).
//
//   CIQ_CONSOLE_URL=http://localhost:8080 CIQ_MAILBOX=.complianceiq/mailbox \
//   CIQ_SIMULATOR_URL=http://127.0.0.1:8090 node console/e2e/console.e2e.mjs

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

import { createRequire } from "node:module";

import { chromium } from "playwright-core";

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const base = (process.env.CIQ_CONSOLE_URL ?? "http://localhost:8080").replace(/\/$/, "");
const mailbox = process.env.CIQ_MAILBOX ?? ".complianceiq/mailbox";
const simulator = process.env.CIQ_SIMULATOR_URL ?? "http://127.0.0.1:8090";
const screenshots = process.env.CIQ_SCREENSHOTS;
const executablePath = process.env.CIQ_CHROMIUM ?? "/usr/bin/chromium";

const stamp = Date.now();
const email = `console-${stamp}@example.com`;
const password = `console e2e ${stamp}`;

function step(what) {
  console.log(`--> ${what}`);
}

/** A quoted-printable body as text (the mailer encodes every letter so). */
function unquote(text) {
  const bytes = text.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
  return Buffer.from(bytes, "latin1").toString("utf8");
}

/** The newest letter to `to` whose text contains `marker`, once it is there (decoded). */
async function letter(to, marker) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    let names = [];
    try {
      names = readdirSync(mailbox).filter((name) => name.endsWith(`${to}.eml`)).sort().reverse();
    } catch {
      // the mailbox appears with the first letter
    }
    for (const name of names) {
      const text = unquote(readFileSync(join(mailbox, name), "latin1"));
      if (text.includes(marker)) return text;
    }
    if (Date.now() > deadline) throw new Error(`no letter to ${to} with "${marker}" within 15 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** RFC 6238 code of a base32 secret, now. */
function totp(secret) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000 / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

/** WCAG 2 A and AA rules (axe-core) on the page as drawn: no serious or critical violation.
 *  (Evaluated through the debugging protocol, which the page's CSP does not govern.) */
async function accessible(page, name) {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await globalThis.axe.run(document, { runOnly: ["wcag2a", "wcag2aa"] });
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map((n) => `${n.target.join(" ")} ${n.failureSummary ?? ""}`).join("; ")}`);
  });
  assert.deepEqual(violations, [], `accessibility of the ${name} page`);
}

async function shoot(page, name) {
  if (!screenshots) return;
  mkdirSync(screenshots, { recursive: true });
  // The window as a person sees it (the top of a long page), small enough to keep in docs/.
  await page.screenshot({ path: join(screenshots, `${name}.png`) });
}

/** A REST call with the page's session, as any client of the API would make it. */
async function rest(page, path) {
  const session = JSON.parse(await page.evaluate(() => sessionStorage.getItem("complianceiq.session")));
  const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${session.accessToken}` } });
  const text = await response.text();
  assert.equal(response.status, 200, `${path}: ${text}`);
  return JSON.parse(text);
}

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const failures = [];
const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
context.setDefaultTimeout(20_000);
const page = await context.newPage();
try {
  page.on("pageerror", (error) => failures.push(`page error: ${error.message}`));

  step("the console loads and asks to sign in");
  await page.goto(`${base}/`);
  await page.waitForURL(/#\/sign-in$/);
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  await accessible(page, "sign-in");
  await shoot(page, "sign-in");

  if (process.env.CIQ_DEMO_FILE) {
    step("the demo person signs in with the credentials `complianceiq dev` printed");
    const demo = JSON.parse(readFileSync(process.env.CIQ_DEMO_FILE, "utf8"));
    await page.getByLabel("Email").fill(demo.email);
    await page.getByLabel("Password").fill(demo.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
    await page.getByRole("link", { name: "Organization", exact: true }).click();
    await page.getByRole("main").getByText("Demo Organization").first().waitFor();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/#\/sign-in$/);
  }

  step(`sign up as ${email}`);
  await page.getByRole("link", { name: "Create an account" }).click();
  await page.getByLabel("Full name").fill("Console Tester");
  await page.getByLabel("Work email").fill(email);
  await page.getByLabel("Password (at least 12 characters)").fill(password);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByText(`We sent a verification link to ${email}`).waitFor();

  step("verify the address with the mailed link");
  const mail = await letter(email, "verify-email?token=");
  const link = mail.match(/https?:\/\/\S+\/verify-email\?token=\S+/)?.[0];
  assert.ok(link, "the letter carries a verification link");
  assert.ok(link.startsWith(base.replace("127.0.0.1", "localhost")) || link.startsWith(base), `the link ${link} leads to this console (${base})`);
  await page.goto(link);
  await page.getByText(`${email} is verified`).waitFor();

  step("sign in; a new person is asked for an organization");
  await page.goto(`${base}/#/sign-in`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Create your organization" }).waitFor();
  await page.getByLabel("Organization name").fill(`Console E2E ${stamp}`);
  await page.getByRole("button", { name: "Create organization" }).click();
  await page.waitForURL(/#\/instances$/);

  step("connect the ServiceNow simulator");
  await page.getByLabel("Name", { exact: true }).fill("Simulator");
  await page.getByLabel("Instance URL").fill(simulator);
  await page.getByLabel("User name").fill("complianceiq");
  await page.getByLabel("Password", { exact: true }).fill("complianceiq-sim");
  await page.getByRole("button", { name: "Test and connect" }).click();
  await page.waitForURL(/#\/instance\/[^/]+$/, { timeout: 60_000 });
  await page.getByRole("heading", { name: "Simulator" }).waitFor();

  step("test the connection, then a full sync, watched live");
  await page.getByRole("button", { name: "Test connection" }).click();
  await page.getByText("connection works").waitFor();
  await page.getByLabel("Mode").selectOption({ label: "Full" });
  await page.getByRole("button", { name: "Sync now" }).click();
  // The page was drawn with the run just started; its end shows without a reload.
  const runs = page.getByRole("table", { name: "Sync runs" });
  await runs.getByText("succeeded").first().waitFor({ timeout: 240_000 });
  await shoot(page, "instance");

  step("run a control effectiveness analysis");
  await page.getByRole("link", { name: "Analyse", exact: true }).click();
  await page.getByLabel("Analysis", { exact: true }).selectOption({ label: "Control effectiveness" });
  // The store takes in the sync's records moments after the sync ends; until then the
  // platform answers that the instance has no data, and the page shows it.
  const deadline = Date.now() + 60_000;
  for (;;) {
    await page.getByRole("button", { name: "Run analysis" }).click();
    const started = await page.waitForURL(/#\/analysis\/[^/]+$/, { timeout: 5_000 }).then(() => true, () => false);
    if (started) break;
    assert.ok(Date.now() < deadline, "the analysis never started");
  }
  const jobId = page.url().split("/").pop();
  const shownScore = await page.getByTestId("job-score").textContent({ timeout: 120_000 });
  const shownCount = await page.getByTestId("result-count").textContent();
  await page.getByRole("table", { name: "Analysis results" }).getByRole("link").first().waitFor();
  await shoot(page, "analysis");

  step("the page's numbers are the API's");
  const job = await rest(page, `/api/v1/analysis/jobs/${jobId}`);
  assert.equal(shownScore, Number(job.summary.score).toFixed(1), "the score the page shows is the API's");
  let count = 0;
  let pageToken = "";
  do {
    const results = await rest(page, `/api/v1/analysis/jobs/${jobId}/results?pageSize=500&pageToken=${pageToken}`);
    count += (results.results ?? []).length;
    pageToken = results.nextPageToken ?? "";
  } while (pageToken);
  assert.equal(Number(shownCount), count, "the page shows every result the API lists");
  assert.ok(count > 0, "the analysis has results");
  console.log(`    score ${shownScore}, ${count} results: as the API says`);

  step("a risk analysis with its matrix");
  await page.goto(`${base}/#/analyses`);
  await page.getByLabel("Analysis", { exact: true }).selectOption({ label: "Risk correlation" });
  await page.getByRole("button", { name: "Run analysis" }).click();
  await page.waitForURL(/#\/analysis\/[^/]+$/);
  await page.getByRole("heading", { name: "Risk matrix" }).waitFor({ timeout: 120_000 });
  await accessible(page, "analysis");
  await shoot(page, "risk-analysis");

  step("every page draws, and none fails");
  for (const [name, heading] of [
    ["overview", "Overview"],
    ["organization", "Organization"],
    ["instances", "ServiceNow instances"],
    ["analyses", "Analyses"],
    ["insights", "Insights"],
    ["dashboards", "Reports"],
    ["widgets", "Widgets"],
    ["notifications", "Notifications"],
    ["audit", "Audit trail"],
    ["webhooks", "Webhooks"],
    ["api-keys", "API keys"],
    ["account", "Account"],
  ]) {
    await page.goto(`${base}/#/${name}`);
    await page.getByRole("heading", { name: heading, exact: true, level: 1 }).waitFor();
    // Every section has drawn its content or its error.
    await page.waitForFunction(() => ![...document.querySelectorAll("main .card")].some((c) => c.children.length < 2));
    const errors = await page.getByRole("alert").allTextContents();
    assert.deepEqual(errors, [], `the ${name} page shows no error`);
    await accessible(page, name);
    if (name === "insights") {
      await page.getByRole("img", { name: /Scores over/ }).waitFor();
      await page.getByRole("button", { name: "Export CSV" }).first().click();
      const file = page.getByRole("link", { name: /\.csv \(\d+ bytes\)/ });
      const href = await file.getAttribute("href");
      const exported = await fetch(new URL(href, base));
      assert.equal(exported.status, 200, "the export's link downloads it");
      assert.match(await exported.text(), /,/, "a CSV");
    }
    if (name === "audit") {
      await page.getByRole("button", { name: "Verify the chain" }).click();
      await page.getByText("intact").waitFor();
    }
    await shoot(page, name);
  }

  step("create a widget from a template and deploy it into the instance");
  await page.goto(`${base}/#/widgets`);
  await page.getByLabel("Name", { exact: true }).fill("Posture gauge");
  await page.getByRole("button", { name: "Create widget" }).click();
  await page.getByRole("button", { name: "Deploy to Simulator" }).first().click();
  await page.getByRole("table", { name: /Deployments of/ }).getByText("succeeded").waitFor({ timeout: 60_000 });
  await page.getByRole("table", { name: "Widgets" }).getByText("deployed", { exact: true }).waitFor();
  await shoot(page, "widgets");

  step("invite a colleague, who signs up and accepts the mailed invitation");
  const colleague = `colleague-${stamp}@example.com`;
  await page.goto(`${base}/#/organization`);
  await page.getByLabel("Email", { exact: true }).fill(colleague);
  await page.getByRole("button", { name: "Send invitation" }).click();
  await page.getByRole("table", { name: "Members" }).getByText(colleague).first().waitFor();
  const invitation = (await letter(colleague, "invitations/accept?token=")).match(/https?:\/\/\S+\/invitations\/accept\?token=\S+/)?.[0];
  assert.ok(invitation, "the invitation carries a link");
  const other = await context.newPage(); // a tab of its own: its own session
  other.on("pageerror", (error) => failures.push(`page error: ${error.message}`));
  await other.goto(`${base}/#/sign-up`);
  await other.getByLabel("Full name").fill("Colleague");
  await other.getByLabel("Work email").fill(colleague);
  await other.getByLabel("Password (at least 12 characters)").fill(password);
  await other.getByRole("button", { name: "Create account" }).click();
  await other.getByText(`We sent a verification link to ${colleague}`).waitFor();
  await other.goto((await letter(colleague, "verify-email?token=")).match(/https?:\/\/\S+\/verify-email\?token=\S+/)[0]);
  await other.getByText(`${colleague} is verified`).waitFor();
  await other.goto(`${base}/#/sign-in`);
  await other.getByLabel("Email").fill(colleague);
  await other.getByLabel("Password").fill(password);
  await other.getByRole("button", { name: "Sign in" }).click();
  await other.getByRole("heading", { name: "Create your organization" }).waitFor();
  await other.goto(invitation);
  await other.getByText("You joined the organization").waitFor();
  await other.getByRole("link", { name: "Continue" }).click();
  await other.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
  await other.getByRole("link", { name: "Organization", exact: true }).click();
  await other.getByRole("main").getByText(`Console E2E ${stamp}`).first().waitFor();
  await other.close();
  await page.reload();
  const joined = page.getByRole("table", { name: "Members" }).getByRole("row").filter({ hasText: colleague });
  await joined.getByText("active").waitFor();
  // Current roles, from the user service: the owner's were granted after the membership was made.
  const members = page.getByRole("table", { name: "Members" });
  await members.getByRole("row").filter({ hasText: email }).getByText("Organization Admin").waitFor();
  await joined.getByText("Analyst").waitFor();

  step("single sign-on: claim an email domain (its TXT record shown), refuse metadata that is not SAML");
  const domain = `sso-${stamp}.example.com`;
  await page.getByLabel("Domain", { exact: true }).fill(domain);
  await page.getByRole("button", { name: "Claim domain" }).click();
  const claimed = page.getByRole("table", { name: "Single sign-on domains" }).getByRole("row").filter({ hasText: domain });
  await claimed.getByText("pending").waitFor();
  await claimed.getByText(`_complianceiq-verification.${domain}`).waitFor();
  await page.getByLabel("The identity provider's metadata (XML)").fill("not metadata");
  await page.getByRole("button", { name: "Save SAML" }).click();
  await page.getByRole("form", { name: "Use SAML" }).getByText(/not SAML metadata/).first().waitFor();

  step("create a second organization, then switch back to the first");
  await page.goto(`${base}/#/organization`);
  await page.getByRole("textbox", { name: "Organization name" }).fill(`Second ${stamp}`);
  await page.getByRole("button", { name: "Create and switch" }).click();
  await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
  const switcher = page.getByRole("combobox", { name: "Organization", exact: true });
  await switcher.waitFor();
  await page.getByRole("link", { name: "Organization", exact: true }).click();
  await page.getByRole("main").getByText(`Second ${stamp}`).first().waitFor();
  await switcher.selectOption({ label: `Console E2E ${stamp}` });
  await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
  await page.getByRole("link", { name: "Organization", exact: true }).click();
  await page.getByRole("main").getByText(`Console E2E ${stamp}`).first().waitFor();
  await page.getByRole("link", { name: "Instances", exact: true }).click();
  await page.getByRole("table", { name: "Instances" }).getByText("Simulator").waitFor();

  step("turn on two-factor authentication, then sign in with a code");
  await page.goto(`${base}/#/account`);
  await page.getByLabel("Current password").fill(password);
  await page.getByRole("button", { name: "Set up" }).click();
  const secret = await page.getByTestId("mfa-secret").textContent();
  await page.getByRole("textbox", { name: "Code" }).fill(totp(secret));
  await page.getByRole("button", { name: "Turn on" }).click();
  await page.getByText("Two-factor authentication is on").waitFor();
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/#\/sign-in$/);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("textbox", { name: "Code" }).waitFor();
  await shoot(page, "sign-in-second-factor");
  // A code is single use within its window: wait for the next one.
  const used = totp(secret);
  while (totp(secret) === used) await new Promise((resolve) => setTimeout(resolve, 500));
  await page.getByRole("textbox", { name: "Code" }).fill(totp(secret));
  await page.getByRole("button", { name: "Verify" }).click();
  await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();

  step("a forged token is refused by the platform, and the page says so");
  const refused = [];
  page.on("response", (response) => {
    if (response.request().headers()["content-type"]?.startsWith("application/grpc-web")) {
      refused.push(response.headers()["grpc-status"]);
    }
  });
  await page.evaluate(() => {
    const session = JSON.parse(sessionStorage.getItem("complianceiq.session"));
    const [head, body] = session.accessToken.split(".");
    const claims = JSON.parse(atob(body.replace(/-/g, "+").replace(/_/g, "/")));
    claims.roles = ["owner"];
    claims.exp = claims.exp + 86_400;
    const forged = btoa(JSON.stringify(claims)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    session.accessToken = `${head}.${forged}.${"A".repeat(43)}`;
    session.refreshToken = "forged-refresh-token";
    sessionStorage.setItem("complianceiq.session", JSON.stringify(session));
  });
  await page.reload();
  const alert = page.getByRole("alert").first();
  await alert.waitFor();
  assert.match(await alert.textContent(), /Not signed in, or the session is no longer valid/);
  assert.ok(refused.includes("16"), `the platform answered UNAUTHENTICATED (grpc-status 16); saw ${refused.join(", ")}`);
  await shoot(page, "forged-token");
} catch (error) {
  // What the page showed when it failed, for the CI log.
  const shown = await page.evaluate(() => document.body.innerText).catch(() => "(no page)");
  console.error(`failed at ${page.url()}; the page shows:\n${shown}`);
  const where = join(process.env.TMPDIR ?? "/tmp", `console-e2e-failure-${stamp}.png`);
  await page.screenshot({ path: where, fullPage: true }).then(() => console.error(`screenshot: ${where}`), () => undefined);
  throw error;
} finally {
  await browser.close();
}
assert.deepEqual(failures, [], "no script error in the page");
console.log("console end-to-end: passed");
