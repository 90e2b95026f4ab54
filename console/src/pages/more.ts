// The rest of the console: scheduled reports, widgets and their deployments, notifications
// (live, over a server stream), the audit trail with its chain check, webhooks and their
// deliveries, and API keys.

import { timestampDate } from "@bufbuild/protobuf/wkt";

import { AuthService } from "../../../sdk/typescript/src/gen/complianceiq/auth/v1/auth_pb.js";
import type { ApiKey } from "../../../sdk/typescript/src/gen/complianceiq/auth/v1/auth_pb.js";
import { AuditService, Outcome } from "../../../sdk/typescript/src/gen/complianceiq/audit/v1/audit_pb.js";
import type { AuditLog } from "../../../sdk/typescript/src/gen/complianceiq/audit/v1/audit_pb.js";
import { DashboardService, ReportFrequency, ReportState } from "../../../sdk/typescript/src/gen/complianceiq/dashboard/v1/dashboard_pb.js";
import type { Report } from "../../../sdk/typescript/src/gen/complianceiq/dashboard/v1/dashboard_pb.js";
import { NotificationService } from "../../../sdk/typescript/src/gen/complianceiq/notification/v1/notification_pb.js";
import type { Notification } from "../../../sdk/typescript/src/gen/complianceiq/notification/v1/notification_pb.js";
import { DeliveryOutcome, WebhookService, WebhookState } from "../../../sdk/typescript/src/gen/complianceiq/webhook/v1/webhook_pb.js";
import type { Webhook, WebhookDelivery } from "../../../sdk/typescript/src/gen/complianceiq/webhook/v1/webhook_pb.js";
import { DeploymentAction, DeploymentState, WidgetService, WidgetState, WidgetType } from "../../../sdk/typescript/src/gen/complianceiq/widget/v1/widget_pb.js";
import type { Widget, WidgetDeployment } from "../../../sdk/typescript/src/gen/complianceiq/widget/v1/widget_pb.js";
import { Severity } from "../../../sdk/typescript/src/gen/complianceiq/common/v1/common_pb.js";
import { items } from "../../../sdk/typescript/src/index.js";
import type { PageContext } from "../main.js";
import * as session from "../session.js";
import { attempt, badge, choice, enumLabel, field, form, h, section, statusBadge, table, time } from "../ui.js";
import { allInstances } from "./instances.js";

export async function dashboardsPage({ main }: PageContext) {
  const service = session.client(DashboardService);
  main.append(h("h1", {}, "Reports"));
  const reports = section("Scheduled reports");
  main.append(reports);
  const runs = h("ul", { "aria-live": "polite" });
  await attempt(reports, async () => {
    const page = await service.listReports({ pageSize: 100 });
    reports.append(
      table(
        "Reports",
        [
          { title: "Name", value: (r: Report) => r.name },
          { title: "Schedule", value: (r) => r.schedule || enumLabel(ReportFrequency, r.frequency) },
          { title: "Recipients", value: (r) => r.recipients.join(", ") },
          { title: "Last rendered", value: (r) => Number(r.lastRenderTime?.seconds ?? 0), render: (r) => time(r.lastRenderTime) },
          { title: "Next", value: (r) => Number(r.nextRenderTime?.seconds ?? 0), render: (r) => time(r.nextRenderTime) },
          {
            title: "Run",
            value: () => "",
            render: (r) =>
              h("button", {
                type: "button",
                class: "link",
                onclick: () =>
                  attempt(reports, async () => {
                    const run = await service.runReport({ reportId: r.id });
                    runs.prepend(h("li", {}, `${r.name}: ${enumLabel(ReportState, run.state)}`, run.downloadUri ? [" · ", h("a", { href: run.downloadUri }, run.fileName || "download")] : ""));
                  }),
              }, "Run now"),
          },
        ],
        page.reports,
        "No scheduled report.",
      ),
      runs,
    );
  });
  main.append(
    section(
      "New report",
      form(
        "New report",
        [field("Name", "name"), field("Recipients (comma separated)", "recipients", { type: "text", required: false })],
        "Create weekly report",
        async ({ name, recipients }) => {
          await service.createReport({
            report: {
              name,
              frequency: ReportFrequency.WEEKLY,
              recipients: recipients.split(",").map((r) => r.trim()).filter(Boolean),
              metrics: ["posture_score"],
            },
          });
          window.dispatchEvent(new HashChangeEvent("hashchange"));
        },
      ),
    ),
  );
}

export async function widgetsPage({ main }: PageContext) {
  const service = session.client(WidgetService);
  main.append(h("h1", {}, "Widgets"));
  const list = section("Widgets for ServiceNow dashboards");
  const deployments = section("Deployments");
  const deployed = h("div");
  deployments.append(h("p", { class: "muted" }, "Choose a widget to see where it is deployed."), deployed);
  const create = section("New widget");
  main.append(list, create, deployments);
  const instances = (await attempt(create, allInstances)) ?? [];
  const instanceName = (id: string) => instances.find((i) => i.id === id)?.name ?? id;
  async function showDeployments(w: Widget) {
    const page = await service.listWidgetDeployments({ widgetId: w.id, pageSize: 50 });
    deployed.replaceChildren(
      table(
        `Deployments of ${w.name}`,
        [
          { title: "When", value: (d: WidgetDeployment) => Number(d.createTime?.seconds ?? 0), render: (d) => time(d.createTime) },
          { title: "Version", value: (d) => d.widgetVersion, numeric: true },
          { title: "Instance", value: (d) => instanceName(d.instanceId) },
          { title: "Action", value: (d) => enumLabel(DeploymentAction, d.action) },
          { title: "State", value: (d) => d.state, render: (d) => statusBadge(DeploymentState, d.state, { good: [DeploymentState.SUCCEEDED], bad: [DeploymentState.FAILED] }) },
          { title: "ServiceNow record", value: (d) => d.servicenowSysId },
          { title: "Error", value: (d) => d.error },
        ],
        page.deployments,
        "Never deployed.",
      ),
    );
  }
  const holder = h("div");
  list.append(holder);
  async function drawList() {
    const widgets: Widget[] = [];
    for await (const w of items(service.listWidgets, { pageSize: 100 }, (p) => p.widgets)) widgets.push(w);
    holder.replaceChildren(
      table(
        "Widgets",
        [
          {
            title: "Name",
            value: (w: Widget) => w.name,
            render: (w) => h("button", { type: "button", class: "link", onclick: () => attempt(deployments, () => showDeployments(w)) }, w.name),
          },
          { title: "Type", value: (w) => enumLabel(WidgetType, w.type) },
          { title: "Instance", value: (w) => instanceName(w.config?.filters.instance_id ?? "") },
          { title: "Version", value: (w) => w.version, numeric: true },
          { title: "State", value: (w) => w.state, render: (w) => statusBadge(WidgetState, w.state, { good: [WidgetState.DEPLOYED], bad: [WidgetState.DEPLOY_FAILED] }) },
          { title: "Updated", value: (w) => Number(w.updateTime?.seconds ?? 0), render: (w) => time(w.updateTime) },
          {
            title: "Deploy",
            value: () => "",
            render: (w) =>
              h("button", {
                type: "button",
                class: "link",
                onclick: () =>
                  attempt(list, async () => {
                    await service.deployWidget({ widgetId: w.id, instanceId: w.config?.filters.instance_id ?? "" });
                    await Promise.all([showDeployments(w), drawList()]);
                  }),
              }, `Deploy to ${instanceName(w.config?.filters.instance_id ?? "")}`),
          },
        ],
        widgets,
        "No widget yet: create one below.",
      ),
    );
  }
  await attempt(list, drawList);
  await attempt(create, async () => {
    const templates = await service.listWidgetTemplates({ pageSize: 100 });
    create.append(
      h("p", { class: "muted" }, "A widget shows the platform's findings on a ServiceNow Service Portal page; deploying writes it into the instance."),
      form(
        "New widget",
        [
          field("Name", "name"),
          choice("Template", "templateId", templates.templates.map((t) => [t.id, t.name])),
          choice("Instance", "instanceId", instances.map((i) => [i.id, i.name])),
        ],
        "Create widget",
        async ({ name, templateId, instanceId }) => {
          const template = templates.templates.find((t) => t.id === templateId);
          await service.createWidget({
            widget: { name, templateId, type: template?.type, config: { filters: { instance_id: instanceId } } },
          });
          window.dispatchEvent(new HashChangeEvent("hashchange"));
        },
      ),
    );
  });
}

export async function notificationsPage({ main, onLeave }: PageContext) {
  const service = session.client(NotificationService);
  main.append(h("h1", {}, "Notifications"));
  const list = section("Notifications");
  const unread = h("p", { "aria-live": "polite", class: "muted" });
  const holder = h("div");
  list.append(unread, holder);
  main.append(list);
  const shown: Notification[] = [];
  function draw() {
    holder.replaceChildren(
      table(
        "Notifications",
        [
          { title: "When", value: (n: Notification) => Number(n.createTime?.seconds ?? 0), render: (n) => time(n.createTime) },
          { title: "Severity", value: (n) => n.severity, render: (n) => statusBadge(Severity, n.severity, { bad: [Severity.HIGH, Severity.CRITICAL] }) },
          { title: "Title", value: (n) => n.title, render: (n) => (n.read ? n.title : h("strong", {}, n.title)) },
          { title: "Message", value: (n) => n.body },
          {
            title: "Read",
            value: (n) => (n.read ? 1 : 0),
            render: (n) =>
              n.read
                ? "read"
                : h("button", {
                    type: "button",
                    class: "link",
                    onclick: () =>
                      attempt(list, async () => {
                        Object.assign(n, await service.markNotificationRead({ notificationId: n.id }));
                        draw();
                      }),
                  }, "Mark read"),
          },
        ],
        shown,
        "No notification.",
      ),
    );
  }
  await attempt(list, async () => {
    const page = await service.listNotifications({ pageSize: 100 });
    shown.push(...page.notifications);
    draw();
  });
  // New notifications arrive over a server stream for as long as the page is open.
  const stop = new AbortController();
  onLeave(() => stop.abort());
  void (async () => {
    try {
      for await (const message of service.streamNotifications({}, { signal: stop.signal })) {
        unread.textContent = `${message.unreadCount} unread · live`;
        if (message.notification) {
          shown.unshift(message.notification);
          draw();
        }
      }
    } catch (error) {
      if (!stop.signal.aborted) list.prepend(h("p", { class: "muted" }, "Live updates stopped; reload the page to resume."));
    }
  })();
}

export async function auditPage({ main }: PageContext) {
  const service = session.client(AuditService);
  main.append(h("h1", {}, "Audit trail"));
  const verify = section("Chain of custody");
  const verdict = h("div", { role: "status" });
  verify.append(
    h("p", { class: "muted" }, "Every entry carries the hash of the one before it; checking the chain shows whether any entry was changed or removed."),
    h("button", {
      type: "button",
      onclick: () =>
        attempt(verify, async () => {
          const result = await service.verifyAuditTrail({});
          verdict.replaceChildren(
            h(
              "p",
              {},
              result.intact ? badge("intact", "good") : badge("broken", "bad"),
              ` ${result.entriesChecked} entries checked`,
              result.checkpointSequence ? ` from checkpoint ${result.checkpointSequence} (${time(result.checkpointTime)})` : "",
              result.intact ? "" : ` · first broken at ${result.firstBrokenSequence}: ${result.problem}`,
            ),
          );
        }),
    }, "Verify the chain"),
    verdict,
  );
  const logs = section("Entries");
  const holder = h("div");
  logs.append(
    form("Search the audit trail", [field("Action or words", "query", { type: "search", required: false })], "Search", async ({ query }) => draw(query)),
    holder,
  );
  main.append(verify, logs);
  async function draw(query = "") {
    const page = await service.listAuditLogs({ pageSize: 200, query });
    holder.replaceChildren(
      table(
        "Audit entries",
        [
          { title: "#", value: (l: AuditLog) => Number(l.sequence), numeric: true },
          { title: "When", value: (l) => Number(l.eventTime?.seconds ?? 0), render: (l) => time(l.eventTime) },
          { title: "Who", value: (l) => l.actor?.email || l.actor?.service || l.actor?.userId || "" },
          { title: "Action", value: (l) => l.action },
          { title: "Resource", value: (l) => `${l.resourceType} ${l.resourceId}` },
          { title: "Outcome", value: (l) => l.outcome, render: (l) => statusBadge(Outcome, l.outcome, { good: [Outcome.SUCCESS], bad: [Outcome.FAILURE, Outcome.DENIED] }) },
          { title: "From", value: (l) => l.actor?.ipAddress ?? "" },
        ],
        page.auditLogs,
      ),
    );
  }
  await attempt(logs, () => draw());
}

export async function webhooksPage({ main }: PageContext) {
  const service = session.client(WebhookService);
  main.append(h("h1", {}, "Webhooks"));
  const list = section("Endpoints");
  const deliveries = section("Deliveries");
  const shown = h("div");
  deliveries.append(h("p", { class: "muted" }, "Choose an endpoint to see its deliveries."), shown);
  async function showDeliveries(webhook: Webhook) {
    const page = await service.listWebhookDeliveries({ webhookId: webhook.id, pageSize: 50 });
    shown.replaceChildren(
      table(
        `Deliveries to ${webhook.url}`,
        [
          { title: "When", value: (d: WebhookDelivery) => Number(d.createTime?.seconds ?? 0), render: (d) => time(d.createTime) },
          { title: "Event", value: (d) => d.eventType },
          { title: "Outcome", value: (d) => d.outcome, render: (d) => statusBadge(DeliveryOutcome, d.outcome, { good: [DeliveryOutcome.SUCCEEDED], bad: [DeliveryOutcome.FAILED] }) },
          { title: "Attempts", value: (d) => d.attemptCount, numeric: true },
          { title: "HTTP", value: (d) => d.responseStatus, numeric: true },
          { title: "Latency (ms)", value: (d) => d.latencyMs, numeric: true },
          { title: "Error", value: (d) => d.error },
        ],
        page.deliveries,
        "No delivery yet.",
      ),
    );
  }
  await attempt(list, async () => {
    const page = await service.listWebhooks({ pageSize: 100 });
    list.append(
      table(
        "Webhooks",
        [
          { title: "URL", value: (w: Webhook) => w.url, render: (w) => h("button", { type: "button", class: "link", onclick: () => attempt(deliveries, () => showDeliveries(w)) }, w.url) },
          { title: "Events", value: (w) => w.eventTypes.join(", ") },
          { title: "State", value: (w) => w.state, render: (w) => statusBadge(WebhookState, w.state, { good: [WebhookState.ACTIVE], bad: [WebhookState.FAILING] }) },
          { title: "Failures in a row", value: (w) => w.consecutiveFailures, numeric: true },
          {
            title: "Test",
            value: () => "",
            render: (w) =>
              h("button", {
                type: "button",
                class: "link",
                onclick: () =>
                  attempt(list, async () => {
                    await service.testWebhook({ webhookId: w.id });
                    await showDeliveries(w);
                  }),
              }, "Send test"),
          },
        ],
        page.webhooks,
        "No webhook.",
      ),
    );
  });
  main.append(
    list,
    section(
      "Add an endpoint",
      form(
        "Add a webhook",
        [field("HTTPS URL", "url", { type: "url" }), field("Events (comma separated; empty: all)", "events", { required: false, placeholder: "analysis.completed, sync.completed" })],
        "Add webhook",
        async ({ url, events }, element) => {
          const created = await service.createWebhook({ webhook: { url, eventTypes: events.split(",").map((e) => e.trim()).filter(Boolean) } });
          element.replaceWith(
            h("div", { role: "status" }, h("p", { class: "ok" }, "Added. The signing secret is shown once: keep it where the receiver can check signatures."), h("p", {}, h("code", { class: "secret" }, created.secret))),
          );
        },
      ),
    ),
    deliveries,
  );
}

export async function apiKeysPage({ main }: PageContext) {
  const auth = session.client(AuthService);
  main.append(h("h1", {}, "API keys"));
  const list = section("Keys");
  const holder = h("div");
  list.append(holder);
  async function draw() {
    const page = await auth.listApiKeys({ pageSize: 100 });
    holder.replaceChildren(
      table(
        "API keys",
        [
          { title: "Name", value: (k: ApiKey) => k.name },
          { title: "Key", value: (k) => k.hint, render: (k) => h("code", {}, k.hint) },
          { title: "Permissions", value: (k) => k.permissions.join(", ") },
          { title: "Created", value: (k) => Number(k.createTime?.seconds ?? 0), render: (k) => time(k.createTime) },
          { title: "Last used", value: (k) => Number(k.lastUseTime?.seconds ?? 0), render: (k) => time(k.lastUseTime) },
          {
            title: "State",
            value: (k) => (k.revokeTime ? "revoked" : expired(k) ? "expired" : "active"),
            render: (k) =>
              k.revokeTime || expired(k)
                ? badge(k.revokeTime ? "revoked" : "expired", "neutral")
                : h("button", { type: "button", class: "link", onclick: () => attempt(list, async () => (await auth.revokeApiKey({ apiKeyId: k.id }), await draw())) }, "Revoke"),
          },
        ],
        page.apiKeys,
        "No API key.",
      ),
    );
  }
  await attempt(list, draw);
  main.append(
    list,
    section(
      "Create a key",
      form(
        "Create an API key",
        [field("Name", "name"), field("Permissions (comma separated)", "permissions", { value: "instances:read, analyses:read, insights:read" })],
        "Create key",
        async ({ name, permissions }, element) => {
          const created = await auth.createApiKey({ name, permissions: permissions.split(",").map((p) => p.trim()).filter(Boolean) });
          element.replaceWith(h("div", { role: "status" }, h("p", { class: "ok" }, "The key is shown once: copy it now."), h("p", {}, h("code", { class: "secret" }, created.secret))));
          await draw();
        },
      ),
    ),
  );
}

function expired(key: ApiKey): boolean {
  return key.expireTime !== undefined && timestampDate(key.expireTime).getTime() < Date.now();
}

