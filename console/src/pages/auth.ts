// Signing up, verifying the address, signing in (with a second factor when the account has
// one), password resets, invitations, and the account's own second factor.

import { Code } from "@connectrpc/connect";

import { AuthService } from "../../../sdk/typescript/src/gen/complianceiq/auth/v1/auth_pb.js";
import type { TokenPair } from "../../../sdk/typescript/src/gen/complianceiq/auth/v1/auth_pb.js";
import { OrganizationService } from "../../../sdk/typescript/src/gen/complianceiq/organization/v1/organization_pb.js";
import { PlatformError } from "../../../sdk/typescript/src/index.js";
import type { PageContext } from "../main.js";
import { leaveMailedLink } from "../main.js";
import * as session from "../session.js";
import { attempt, field, form, h, section } from "../ui.js";

function centered(main: HTMLElement, title: string, ...children: (Node | string | false)[]) {
  main.classList.add("narrow");
  main.append(h("h1", {}, title), ...children.filter((c): c is Node | string => c !== false));
}

function finishSignIn(tokens: TokenPair) {
  session.signIn(tokens);
  window.location.hash = tokens.organizationId ? "#/overview" : "#/new-organization";
}

export async function signInPage({ main }: PageContext) {
  const auth = session.publicClient(AuthService);
  const step = h("div");
  const password = form(
    "Sign in",
    [
      field("Email", "email", { type: "email", autocomplete: "username" }),
      field("Password", "password", { type: "password", autocomplete: "current-password" }),
    ],
    "Sign in",
    async ({ email, password }) => {
      const login = await auth.login({ email, password });
      if (login.result.case === "tokens") return finishSignIn(login.result.value);
      if (login.result.case !== "mfaChallenge") throw new Error("the platform answered neither tokens nor a challenge");
      const challengeToken = login.result.value.challengeToken;
      step.replaceChildren(
        h("p", {}, "Enter the six-digit code from your authenticator app, or one of your recovery codes."),
        form(
          "Second factor",
          [field("Code", "code", { autocomplete: "one-time-code", placeholder: "123456" })],
          "Verify",
          async ({ code }) => {
            const verified = await auth.verifyMfa({ challengeToken, code: code.trim() });
            if (!verified.tokens) throw new Error("the platform answered no tokens");
            finishSignIn(verified.tokens);
          },
        ),
      );
    },
  );
  step.append(password);
  centered(
    main,
    "Sign in",
    step,
    h("p", {}, h("a", { href: "#/single-sign-on" }, "Sign in through your organization (single sign-on)")),
    h("p", {}, h("a", { href: "#/sign-up" }, "Create an account"), " · ", h("a", { href: "#/forgot-password" }, "Forgot your password?")),
  );
}

export async function signUpPage({ main }: PageContext) {
  const auth = session.publicClient(AuthService);
  const done = h("div", { role: "status" });
  centered(
    main,
    "Create your account",
    form(
      "Create your account",
      [
        field("Full name", "fullName", { autocomplete: "name" }),
        field("Work email", "email", { type: "email", autocomplete: "email" }),
        field("Password (at least 12 characters)", "password", { type: "password", autocomplete: "new-password" }),
      ],
      "Create account",
      async ({ fullName, email, password }, element) => {
        await auth.register({ email, password, fullName });
        element.remove();
        done.replaceChildren(
          h("p", { class: "ok" }, `We sent a verification link to ${email}. Open it to activate the account.`),
        );
      },
    ),
    done,
    h("p", {}, "Already registered? ", h("a", { href: "#/sign-in" }, "Sign in")),
  );
}

export async function verifyEmailPage({ main, args: [token] }: PageContext) {
  centered(main, "Verify your email");
  const result = await attempt(main, () => session.publicClient(AuthService).verifyEmail({ token }));
  if (result) {
    main.append(h("p", { class: "ok", role: "status" }, `${result.email} is verified. You can sign in now.`));
  }
  main.append(h("p", {}, h("a", { href: "/#/sign-in" }, "Sign in")));
  leaveMailedLink("#/verified");
}

/** Single sign-on leaves the console for the organization's identity provider, which sends
 * the browser back to /sso. */
export async function singleSignOnPage({ main }: PageContext) {
  centered(
    main,
    "Sign in through your organization",
    form("Single sign-on", [field("Work email", "email", { type: "email", autocomplete: "username" })], "Continue", async ({ email }) => {
      window.location.assign(`/api/v1/auth/sso/start?email=${encodeURIComponent(email)}`);
    }),
    h("p", {}, h("a", { href: "#/sign-in" }, "Sign in with a password")),
  );
}

/** Where single sign-on lands: the ticket (or the refusal) is in the URL's fragment. */
export async function ssoPage({ main }: PageContext) {
  const outcome = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  centered(main, "Single sign-on");
  const ticket = outcome.get("ticket");
  if (!ticket) {
    main.append(
      h("p", { class: "error", role: "alert" }, outcome.get("message") ?? "The sign-in did not complete."),
      h("p", {}, h("a", { href: "/#/sign-in" }, "Back to sign in")),
    );
    return;
  }
  const tokens = await attempt(main, () => session.publicClient(AuthService).exchangeSsoTicket({ ticket }));
  if (tokens) {
    leaveMailedLink("#/overview");
    finishSignIn(tokens);
  } else {
    main.append(h("p", {}, h("a", { href: "/#/sign-in" }, "Back to sign in")));
  }
}

export async function forgotPasswordPage({ main }: PageContext) {
  const done = h("p", { role: "status" });
  centered(
    main,
    "Reset your password",
    form("Reset your password", [field("Email", "email", { type: "email", autocomplete: "email" })], "Send reset link", async ({ email }, element) => {
      await session.publicClient(AuthService).forgotPassword({ email });
      element.remove();
      done.textContent = "If an account has this address, a reset link is on its way.";
    }),
    done,
  );
}

export async function resetPasswordPage({ main, args: [token] }: PageContext) {
  const done = h("p", { role: "status" });
  centered(
    main,
    "Choose a new password",
    form(
      "Choose a new password",
      [field("New password", "newPassword", { type: "password", autocomplete: "new-password" })],
      "Set password",
      async ({ newPassword }, element) => {
        await session.publicClient(AuthService).resetPassword({ token, newPassword });
        element.remove();
        done.replaceChildren("Your password is changed. ", h("a", { href: "/#/sign-in" }, "Sign in"));
      },
    ),
    done,
  );
  leaveMailedLink("#/reset");
}

export async function invitationPage({ main, args: [token] }: PageContext) {
  centered(main, "Join an organization");
  if (!session.signedIn()) {
    main.append(h("p", {}, "Sign in (or create an account with the invited address) first, then open the link again."));
    main.append(h("p", {}, h("a", { href: `#/sign-in` }, "Sign in")));
    return;
  }
  const member = await attempt(main, () => session.client(OrganizationService).acceptInvitation({ token }));
  if (!member) return;
  const tokens = await attempt(main, () => switchOrganization(member.organizationId));
  if (tokens) main.append(h("p", { class: "ok" }, "You joined the organization. ", h("a", { href: "/#/overview" }, "Continue")));
  leaveMailedLink("#/joined");
}

/** A session in `organizationId`, once the membership has reached the auth service. */
export async function switchOrganization(organizationId: string): Promise<TokenPair> {
  const auth = session.publicClient(AuthService);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const tokens = await auth.refresh({ refreshToken: session.refreshToken(), organizationId });
      session.signIn(tokens);
      return tokens;
    } catch (error) {
      // The membership travels to the auth service as an event: moments, not more.
      if (PlatformError.from(error).code !== Code.PermissionDenied || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

export async function accountPage({ main }: PageContext) {
  const claims = session.claims();
  main.append(h("h1", {}, "Account"));
  const mfa = section(
    "Two-factor authentication",
    h("p", {}, "Protect the account with a time-based code from an authenticator app. You will be asked for it at every sign-in."),
  );
  mfa.append(
    form("Turn on two-factor authentication", [field("Current password", "password", { type: "password", autocomplete: "current-password" })], "Set up", async ({ password }, element) => {
      const auth = session.client(AuthService);
      const enabled = await auth.enableMfa({ password });
      element.replaceWith(
        h(
          "div",
          {},
          h("p", {}, "Add this key to your authenticator app, then enter the code it shows."),
          h("p", {}, h("code", { class: "secret", "data-testid": "mfa-secret" }, enabled.secret)),
          h("p", { class: "muted small" }, enabled.provisioningUri),
          form("Confirm the code", [field("Code", "code", { autocomplete: "one-time-code" })], "Turn on", async ({ code }, confirm) => {
            const verified = await auth.verifyMfa({ code: code.trim() });
            confirm.replaceWith(
              h(
                "div",
                { role: "status" },
                h("p", { class: "ok" }, "Two-factor authentication is on. Keep these recovery codes somewhere safe; each works once."),
                h("ul", { class: "codes" }, ...verified.recoveryCodes.map((c) => h("li", {}, h("code", {}, c)))),
              ),
            );
          }),
        ),
      );
    }),
  );
  main.append(
    section("Signed in as", h("p", {}, String(claims.email ?? "")), h("p", { class: "muted small" }, `organization ${session.organizationId() || "none yet"}`)),
    mfa,
  );
}
