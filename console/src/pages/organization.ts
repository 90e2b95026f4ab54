// The organization: creating one, its plan and usage, members, invitations, single sign-on
// and roles.

import { MemberState, OrganizationService, Plan } from "../../../sdk/typescript/src/gen/complianceiq/organization/v1/organization_pb.js";
import type { Member } from "../../../sdk/typescript/src/gen/complianceiq/organization/v1/organization_pb.js";
import { UserService } from "../../../sdk/typescript/src/gen/complianceiq/user/v1/user_pb.js";
import type { Role } from "../../../sdk/typescript/src/gen/complianceiq/user/v1/user_pb.js";
import { items } from "../../../sdk/typescript/src/index.js";
import type { PageContext } from "../main.js";
import * as session from "../session.js";
import { attempt, badge, choice, enumLabel, field, form, h, section, table, time } from "../ui.js";
import { switchOrganization } from "./auth.js";
import { singleSignOnSection } from "./sso.js";

export async function newOrganizationPage({ main }: PageContext) {
  main.classList.add("narrow");
  main.append(
    h("h1", {}, "Create your organization"),
    h("p", {}, "An organization holds your ServiceNow instances, analyses and people. You will be its owner."),
    form("Create your organization", [field("Organization name", "displayName", { autocomplete: "organization" })], "Create organization", async ({ displayName }) => {
      const organization = await session.client(OrganizationService).createOrganization({ organization: { displayName } });
      await switchOrganization(organization.id);
      window.location.hash = "#/instances";
    }),
  );
}

export async function organizationPage({ main }: PageContext) {
  const orgId = session.organizationId();
  const organizations = session.client(OrganizationService);
  main.append(h("h1", {}, "Organization"));
  const about = section("About");
  main.append(about);
  await attempt(about, async () => {
    const [organization, usage] = await Promise.all([organizations.getOrganization({ orgId }), organizations.getUsage({ orgId })]);
    const quota = (name: string, q?: { used: bigint; limit: bigint }) =>
      h("div", { class: "stat" }, h("span", { class: "stat-label" }, name), h("span", { class: "stat-value" }, q ? `${q.used} / ${q.limit === 0n ? "unlimited" : q.limit}` : "—"));
    about.append(
      h("p", {}, h("strong", {}, organization.displayName), ` · ${organization.slug} · plan `, badge(enumLabel(Plan, organization.plan))),
      h("div", { class: "stats" }, quota("Instances", usage.instances), quota("Members", usage.members), quota("Analyses this period", usage.analyses)),
    );
  });

  const members = section("Members and invitations");
  main.append(members);
  const roles: Role[] = [];
  await attempt(members, async () => {
    for await (const role of items(session.client(UserService).listRoles, { pageSize: 100 }, (p) => p.roles)) roles.push(role);
    const everyone: Member[] = [];
    for await (const member of items(organizations.listMembers, { orgId, pageSize: 100 }, (p) => p.members)) everyone.push(member);
    const roleName = (id: string) => roles.find((r) => r.id === id)?.name ?? id;
    // A member's record keeps the roles granted on joining; the user service has the current ones.
    const current = new Map<string, string[]>();
    try {
      for await (const user of items(session.client(UserService).listUsers, { pageSize: 100 }, (p) => p.users)) current.set(user.id, user.roleIds);
    } catch {
      // Without users:read, the roles granted on joining are what can be shown.
    }
    members.append(
      table(
        "Members",
        [
          { title: "Name", value: (m: Member) => m.fullName || m.email },
          { title: "Email", value: (m) => m.email },
          { title: "Roles", value: (m) => (current.get(m.userId) ?? m.roleIds).map(roleName).join(", ") },
          {
            title: "State",
            value: (m) => enumLabel(MemberState, m.state),
            render: (m) => badge(enumLabel(MemberState, m.state), m.state === MemberState.ACTIVE ? "good" : "busy"),
          },
          { title: "Joined or invited", value: (m) => Number((m.joinTime ?? m.inviteTime)?.seconds ?? 0), render: (m) => time(m.joinTime ?? m.inviteTime) },
        ],
        everyone,
      ),
      h("h3", {}, "Invite someone"),
      form(
        "Invite a member",
        [field("Email", "email", { type: "email" }), choice("Role", "roleId", roles.map((r) => [r.id, r.name]))],
        "Send invitation",
        async ({ email, roleId }) => {
          await organizations.addMember({ orgId, email, roleIds: roleId ? [roleId] : [] });
          window.dispatchEvent(new HashChangeEvent("hashchange"));
        },
      ),
    );
  });

  main.append(await singleSignOnSection(orgId, roles));

  main.append(
    section(
      "Another organization",
      h("p", { class: "muted" }, "Create a separate organization (another business unit or client); switch between them at the top."),
      form("Create another organization", [field("Organization name", "displayName")], "Create and switch", async ({ displayName }) => {
        const organization = await organizations.createOrganization({ organization: { displayName } });
        await switchOrganization(organization.id);
        window.location.hash = "#/overview";
      }),
    ),
  );

  const roleSection = section("Roles");
  main.append(roleSection);
  roleSection.append(
    table(
      "Roles",
      [
        { title: "Role", value: (r: Role) => r.name },
        { title: "Description", value: (r) => r.description },
        { title: "Permissions", value: (r) => r.permissions.length, numeric: true, render: (r) => h("span", { title: r.permissions.join(", ") }, String(r.permissions.length)) },
        { title: "Kind", value: (r) => (r.builtIn ? "built in" : "custom") },
      ],
      roles,
    ),
  );
}
