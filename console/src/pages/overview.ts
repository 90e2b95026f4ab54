// The organization at a glance: posture, findings by severity and each instance's state.

import { timestampDate } from "@bufbuild/protobuf/wkt";

import { DashboardService } from "../../../sdk/typescript/src/gen/complianceiq/dashboard/v1/dashboard_pb.js";
import type { InstanceSummary } from "../../../sdk/typescript/src/gen/complianceiq/dashboard/v1/dashboard_pb.js";
import type { PageContext } from "../main.js";
import * as session from "../session.js";
import { attempt, h, lineChart, metrics, section, table, time } from "../ui.js";

export async function overviewPage({ main }: PageContext) {
  main.append(h("h1", {}, "Overview"));
  const names = new Map<string, string>();
  const summary = section("Compliance posture");
  main.append(summary);
  await attempt(summary, async () => {
    const found = await session.client(DashboardService).getDashboardSummary({});
    for (const instance of found.instances) names.set(instance.instanceId, instance.instanceName);
    // Worst first, whatever order the map arrived in.
    const rank = ["critical", "high", "medium", "low", "info"];
    const severities = Object.entries(found.findingsBySeverity).sort(
      ([a], [b]) => rank.indexOf(a.toLowerCase()) - rank.indexOf(b.toLowerCase()),
    );
    const total = severities.reduce((sum, [, count]) => sum + Number(count), 0);
    summary.append(
      h(
        "div",
        { class: "stats" },
        h("div", { class: "stat big" }, h("span", { class: "stat-label" }, "Posture score"), h("span", { class: "stat-value" }, found.postureScore.toFixed(1))),
      ),
      metrics(found.metrics.filter((m) => m.name !== "posture_score")),
      h("h3", {}, "Open findings by severity"),
      severities.length === 0
        ? h("p", { class: "muted" }, "No open finding.")
        : h(
            "ul",
            { class: "bars", "aria-label": "Open findings by severity" },
            ...severities.map(([severity, count]) =>
              h(
                "li",
                {},
                h("span", { class: "bar-label" }, severity.toLowerCase()),
                h("span", { class: `bar sev-${severity.toLowerCase()}`, style: `width: ${Math.max(2, (Number(count) / total) * 100)}%` }),
                h("span", { class: "bar-value" }, String(count)),
              ),
            ),
          ),
      h("h3", {}, "Instances"),
      table(
        "Instances",
        [
          { title: "Instance", value: (i: InstanceSummary) => i.instanceName, render: (i) => h("a", { href: `#/instance/${i.instanceId}` }, i.instanceName) },
          { title: "Posture", value: (i) => i.postureScore, numeric: true, render: (i) => i.postureScore.toFixed(1) },
          { title: "Open critical and high", value: (i) => i.criticalFindings, numeric: true },
          { title: "Last sync", value: (i) => Number(i.lastSyncTime?.seconds ?? 0), render: (i) => time(i.lastSyncTime) },
        ],
        found.instances,
        "No instance yet.",
      ),
    );
  });
  const trends = section("Over time");
  main.append(trends);
  await attempt(trends, async () => {
    const analytics = await session.client(DashboardService).getAnalytics({});
    trends.append(
      lineChart(
        "The organization's scores by day",
        analytics.series.map((s) => ({
          name: [s.metric.replace(/_/g, " "), names.get(s.labels.instance_id) ?? ""].filter(Boolean).join(" · "),
          points: s.points.map((p) => ({ time: p.time ? timestampDate(p.time) : new Date(0), value: p.value })),
        })),
      ),
    );
  });
}
