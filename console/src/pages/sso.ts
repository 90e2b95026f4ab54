// The organization's single sign-on: its email domains (proven by a DNS TXT record), its
// identity provider (OpenID Connect or SAML 2.0), and whether members must use it.

import { AuthService } from "../../../sdk/typescript/src/gen/complianceiq/auth/v1/auth_pb.js";
import type { SsoConfig, SsoDomain } from "../../../sdk/typescript/src/gen/complianceiq/auth/v1/auth_pb.js";
import type { Role } from "../../../sdk/typescript/src/gen/complianceiq/user/v1/user_pb.js";
import * as session from "../session.js";
import { attempt, badge, choice, field, form, h, section, table, time } from "../ui.js";

const reload = () => window.dispatchEvent(new HashChangeEvent("hashchange"));

function checkbox(label: string, name: string, checked: boolean): HTMLElement {
  const id = `field-${name}`;
  return h("div", { class: "field" }, h("label", { for: id }, h("input", { id, name, type: "checkbox", checked }), ` ${label}`));
}

function textArea(label: string, name: string, value: string, placeholder: string): HTMLElement {
  const id = `field-${name}`;
  return h("div", { class: "field" }, h("label", { for: id }, label), h("textarea", { id, name, rows: 6, placeholder }, value));
}

/** What an admin registers at the provider, and what the platform keeps of it. */
function summary(config: SsoConfig): HTMLElement {
  const provider = config.provider;
  const rows: [string, string][] = [];
  if (provider.case === "oidc") {
    rows.push(["Protocol", "OpenID Connect"], ["Issuer", provider.value.issuer], ["Client id", provider.value.clientId]);
    rows.push(["Redirect URI to register", config.redirectUri]);
  } else if (provider.case === "saml") {
    rows.push(["Protocol", "SAML 2.0"], ["Identity provider", provider.value.idpEntityId]);
    rows.push(["Entity id and metadata URL to register", provider.value.spEntityId], ["Assertion consumer service", provider.value.acsUrl]);
  } else {
    return h("p", { class: "muted" }, "No identity provider is configured: members sign in with their password.");
  }
  rows.push(["Members must use it", config.requireSso ? "yes" : "no"], ["Changed", time(config.updateTime)]);
  return h("dl", { class: "facts" }, ...rows.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

/** The organization page's single sign-on section (admins; others see why they cannot). */
export async function singleSignOnSection(orgId: string, roles: Role[]): Promise<HTMLElement> {
  const auth = session.client(AuthService);
  const element = section("Single sign-on");
  await attempt(element, async () => {
    const config = await auth.getSsoConfig({ orgId });
    const mappings = (extra: { group: string; roleId: string }): { group: string; roleIds: string[] }[] => {
      const kept = config.groupRoleMappings.map((m) => ({ group: m.group, roleIds: [...m.roleIds] }));
      return extra.group ? [...kept, { group: extra.group, roleIds: [extra.roleId] }] : kept;
    };
    // Each form names its fields with its own prefix (element ids are unique on the page).
    const save = async (provider: SsoConfig["provider"], values: Record<string, string>, prefix: string) => {
      await auth.updateSsoConfig({
        orgId,
        config: {
          provider,
          requireSso: values[`${prefix}RequireSso`] === "on",
          defaultRoleIds: config.defaultRoleIds,
          groupRoleMappings: mappings({ group: values[`${prefix}Group`]?.trim() ?? "", roleId: values[`${prefix}RoleId`] ?? "" }),
        },
      });
      reload();
    };
    const mappingFields = (prefix: string) => [
      field("Members of the group… (optional)", `${prefix}Group`, { required: false }),
      choice("…get the role", `${prefix}RoleId`, roles.map((r) => [r.id, r.name])),
      checkbox("Members must sign in this way", `${prefix}RequireSso`, config.requireSso),
    ];
    const oidc = config.provider.case === "oidc" ? config.provider.value : undefined;
    const saml = config.provider.case === "saml" ? config.provider.value : undefined;
    element.append(
      summary(config),
      h("h3", {}, "Email domains"),
      h("p", { class: "muted" }, "Sign-ins are routed by the email's domain. Publish the TXT record, then verify."),
      table(
        "Single sign-on domains",
        [
          { title: "Domain", value: (d: SsoDomain) => d.domain },
          { title: "State", value: (d) => (d.verified ? "verified" : "pending"), render: (d) => badge(d.verified ? "verified" : "pending", d.verified ? "good" : "busy") },
          { title: "TXT record", value: (d) => (d.verified ? "" : `${d.verificationRecordName} = ${d.verificationRecordValue}`) },
          {
            title: "Actions",
            value: (d) => d.domain,
            render: (d) =>
              h(
                "span",
                {},
                d.verified ? "" : h("button", { type: "button", onclick: () => attempt(element, async () => (await auth.verifySsoDomain({ orgId, domain: d.domain }), reload())) }, "Verify"),
                " ",
                h("button", { type: "button", class: "secondary", onclick: () => attempt(element, async () => (await auth.removeSsoDomain({ orgId, domain: d.domain }), reload())) }, "Remove"),
              ),
          },
        ],
        config.domains,
        "No domain claimed yet.",
      ),
      form("Claim a domain", [field("Domain", "domain", { placeholder: "example.com" })], "Claim domain", async ({ domain }) => {
        await auth.addSsoDomain({ orgId, domain });
        reload();
      }),
      h("h3", {}, "OpenID Connect"),
      form(
        "Use OpenID Connect",
        [
          field("Issuer", "issuer", { type: "url", value: oidc?.issuer, placeholder: "https://login.example.com/realms/acme" }),
          field("Client id", "clientId", { value: oidc?.clientId }),
          field(oidc ? "Client secret (empty keeps the stored one)" : "Client secret", "clientSecret", { type: "password", required: !oidc, autocomplete: "off" }),
          field("Groups claim", "groupsClaim", { value: oidc?.groupsClaim, required: false, placeholder: "groups" }),
          ...mappingFields("oidc"),
        ],
        "Save OpenID Connect",
        (values) =>
          save({ case: "oidc", value: { issuer: values.issuer, clientId: values.clientId, clientSecret: values.clientSecret, groupsClaim: values.groupsClaim } } as SsoConfig["provider"], values, "oidc"),
      ),
      h("h3", {}, "SAML 2.0"),
      form(
        "Use SAML",
        [
          field("Metadata URL (fetched daily; or paste the metadata below)", "metadataUrl", { type: "url", value: saml?.idpMetadataUrl, required: false, placeholder: "https://idp.example.com/saml/metadata" }),
          textArea("The identity provider's metadata (XML)", "metadata", saml?.idpMetadataUrl ? "" : (saml?.idpMetadataXml ?? ""), "<md:EntityDescriptor …>"),
          field("Groups attribute", "groupsAttribute", { value: saml?.groupsAttribute, required: false, placeholder: "groups" }),
          ...mappingFields("saml"),
        ],
        "Save SAML",
        (values) =>
          save(
            { case: "saml", value: { idpMetadataXml: values.metadata, idpMetadataUrl: values.metadataUrl, groupsAttribute: values.groupsAttribute } } as SsoConfig["provider"],
            values,
            "saml",
          ),
      ),
    );
    if (config.provider.case) {
      element.append(
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            onclick: () =>
              attempt(element, async () => {
                if (!window.confirm("Remove single sign-on? Its sessions end and members sign in with passwords.")) return;
                await auth.deleteSsoConfig({ orgId });
                reload();
              }),
          },
          "Remove single sign-on",
        ),
      );
    }
  });
  return element;
}
