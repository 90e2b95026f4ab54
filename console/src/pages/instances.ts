// ServiceNow instances: connecting one, testing the connection, syncing, and the sync history,
// refreshed while a sync runs.

import {
  AuthType,
  HealthStatus,
  InstanceService,
  SyncMode,
  SyncState,
} from "../../../sdk/typescript/src/gen/complianceiq/instance/v1/instance_pb.js";
import type { Instance, SyncRun } from "../../../sdk/typescript/src/gen/complianceiq/instance/v1/instance_pb.js";
import { items } from "../../../sdk/typescript/src/index.js";
import type { PageContext } from "../main.js";
import * as session from "../session.js";
import { attempt, badge, choice, enumLabel, field, form, h, section, statusBadge, table, time } from "../ui.js";

function syncBadge(state: SyncState): HTMLElement {
  return statusBadge(SyncState, state, { good: [SyncState.SUCCEEDED], bad: [SyncState.FAILED], busy: [SyncState.PENDING, SyncState.RUNNING] });
}

function healthBadge(status: HealthStatus): HTMLElement {
  return statusBadge(HealthStatus, status, { good: [HealthStatus.HEALTHY], bad: [HealthStatus.UNHEALTHY] });
}

export async function allInstances(): Promise<Instance[]> {
  const found: Instance[] = [];
  const instances = session.client(InstanceService);
  for await (const instance of items(instances.listInstances, { pageSize: 100 }, (p) => p.instances)) found.push(instance);
  return found;
}

export async function instancesPage({ main }: PageContext) {
  main.append(h("h1", {}, "ServiceNow instances"));
  const list = section("Connected instances");
  main.append(list);
  await attempt(list, async () => {
    const found = await allInstances();
    list.append(
      table(
        "Instances",
        [
          { title: "Name", value: (i: Instance) => i.name, render: (i) => h("a", { href: `#/instance/${i.id}` }, i.name) },
          { title: "URL", value: (i) => i.url },
          { title: "Health", value: (i) => enumLabel(HealthStatus, i.healthStatus), render: (i) => healthBadge(i.healthStatus) },
          { title: "Last sync", value: (i) => Number(i.lastSyncTime?.seconds ?? 0), render: (i) => time(i.lastSyncTime) },
          { title: "Sync every", value: (i) => i.syncIntervalMinutes, render: (i) => `${i.syncIntervalMinutes} min`, numeric: true },
        ],
        found,
        "No instance yet: connect one below.",
      ),
    );
  });
  main.append(
    section(
      "Connect an instance",
      h("p", { class: "muted" }, "The platform reads GRC tables through the Table API with a read-only account. The connection is tested before it is saved."),
      form(
        "Connect an instance",
        [
          field("Name", "name", { placeholder: "Production IRM" }),
          field("Instance URL", "url", { type: "url", placeholder: "https://example.service-now.com" }),
          field("User name", "username", { autocomplete: "off" }),
          field("Password", "password", { type: "password", autocomplete: "new-password" }),
          field("Sync every (minutes)", "interval", { type: "number", value: "60" }),
        ],
        "Test and connect",
        async ({ name, url, username, password, interval }) => {
          const instance = await session.client(InstanceService).createInstance({
            instance: {
              name,
              url,
              authType: AuthType.BASIC,
              credentials: { kind: { case: "basic", value: { username, password } } },
              syncIntervalMinutes: Number(interval) || 60,
            },
            validateConnection: true,
          });
          window.location.hash = `#/instance/${instance.id}`;
        },
      ),
    ),
  );
}

export async function instancePage({ main, args: [instanceId], live }: PageContext) {
  const instances = session.client(InstanceService);
  const instance = await attempt(main, () => instances.getInstance({ instanceId }));
  if (!instance) return;
  main.append(
    h("p", {}, h("a", { href: "#/instances" }, "← Instances")),
    h("h1", {}, instance.name),
    h("p", { class: "muted" }, h("a", { href: instance.url, target: "_blank", rel: "noopener noreferrer" }, instance.url), " · ", healthBadge(instance.healthStatus)),
  );
  const actions = section("Actions");
  const tested = h("div", { role: "status" });
  actions.append(
    h(
      "div",
      { class: "row" },
      h(
        "button",
        {
          type: "button",
          onclick: () =>
            attempt(actions, async () => {
              tested.replaceChildren(h("p", { class: "muted" }, "Testing…"));
              const result = await instances.testConnection({ instanceId });
              tested.replaceChildren(
                h("p", {}, result.success ? badge("connection works", "good") : badge("connection fails", "bad"), ` ${result.latencyMs} ms`, result.error ? ` · ${result.error}` : ""),
                table(
                  "Table access",
                  [
                    { title: "Table", value: (t: (typeof result.tables)[number]) => t.table },
                    { title: "Readable", value: (t) => (t.readable ? "yes" : "no"), render: (t) => badge(t.readable ? "yes" : "no", t.readable ? "good" : "bad") },
                    { title: "Records", value: (t) => Number(t.recordCount), numeric: true },
                    { title: "Error", value: (t) => t.error },
                  ],
                  result.tables,
                ),
              );
            }),
        },
        "Test connection",
      ),
      form("Sync now", [choice("Mode", "mode", [[String(SyncMode.INCREMENTAL), "Incremental"], [String(SyncMode.FULL), "Full"]])], "Sync now", async ({ mode }) => {
        await instances.syncInstance({ instanceId, mode: Number(mode) as SyncMode });
        await drawRuns();
      }),
      h("a", { class: "button", href: `#/analyses/${instanceId}` }, "Analyse"),
    ),
    tested,
  );
  const runs = section("Sync history");
  main.append(actions, runs);
  const holder = h("div");
  runs.append(h("p", { class: "muted small" }, "Refreshes by itself while a sync runs."), holder);

  async function drawRuns(): Promise<boolean> {
    const page = await instances.listSyncRuns({ instanceId, pageSize: 20 });
    holder.replaceChildren(
      table(
        "Sync runs",
        [
          { title: "Started", value: (r: SyncRun) => Number(r.createTime?.seconds ?? 0), render: (r) => time(r.createTime) },
          { title: "Mode", value: (r) => enumLabel(SyncMode, r.mode) },
          { title: "State", value: (r) => enumLabel(SyncState, r.state), render: (r) => syncBadge(r.state) },
          { title: "Progress", value: (r) => r.progressPercent, numeric: true, render: (r) => h("progress", { max: 100, value: r.progressPercent, "aria-label": "progress" }) },
          { title: "Records fetched", value: (r) => fetched(r), numeric: true },
          { title: "Ended", value: (r) => Number(r.endTime?.seconds ?? 0), render: (r) => time(r.endTime) },
          { title: "Error", value: (r) => r.error },
        ],
        page.syncRuns,
        "Never synced.",
      ),
    );
    return page.syncRuns.some((r) => r.state === SyncState.PENDING || r.state === SyncState.RUNNING);
  }
  await attempt(runs, drawRuns);
  // Every second while a sync runs, every ten otherwise (a scheduled sync may start).
  let quiet = 0;
  live(1000, async () => {
    if (quiet > 0) {
      quiet--;
      return true;
    }
    quiet = (await drawRuns()) ? 0 : 9;
    return true;
  });
}

export function fetched(run: SyncRun): number {
  return run.tables.reduce((sum, t) => sum + Number(t.fetched), 0);
}
