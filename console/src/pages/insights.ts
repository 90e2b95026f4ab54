// Insights: an instance's current findings and posture, their trends and history, a
// comparison with another instance or an earlier time, search, and exports.

import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";

import { AnalysisType } from "../../../sdk/typescript/src/gen/complianceiq/analysis/v1/analysis_pb.js";
import { ExportFormat, Severity } from "../../../sdk/typescript/src/gen/complianceiq/common/v1/common_pb.js";
import {
  ExportState,
  InsightCategory,
  InsightStatus,
  InsightsService,
} from "../../../sdk/typescript/src/gen/complianceiq/insights/v1/insights_pb.js";
import type { Insight, InsightHistoryEntry, MetricComparison } from "../../../sdk/typescript/src/gen/complianceiq/insights/v1/insights_pb.js";
import type { PageContext } from "../main.js";
import * as session from "../session.js";
import { attempt, choice, enumLabel, field, form, h, lineChart, metrics, recordLink, section, statusBadge, table, time } from "../ui.js";
import { allInstances } from "./instances.js";

function severityBadge(severity: Severity): HTMLElement {
  return statusBadge(Severity, severity, { bad: [Severity.HIGH, Severity.CRITICAL], busy: [Severity.MEDIUM] });
}

function insightTable(caption: string, insights: Insight[], onExport?: (insight: Insight) => void): HTMLElement {
  return table(
    caption,
    [
      { title: "Severity", value: (i: Insight) => i.severity, render: (i) => severityBadge(i.severity) },
      { title: "Insight", value: (i) => i.title, render: (i) => h("span", { title: i.summary }, i.title) },
      { title: "Category", value: (i) => enumLabel(InsightCategory, i.category) },
      { title: "Record", value: (i) => i.subject?.display ?? "", render: (i) => recordLink(i.subject) },
      { title: "Status", value: (i) => enumLabel(InsightStatus, i.status) },
      { title: "Last seen", value: (i) => Number(i.lastSeenTime?.seconds ?? 0), render: (i) => time(i.lastSeenTime ?? i.createTime) },
      ...(onExport
        ? [{ title: "Export", value: () => "", render: (i: Insight) => h("button", { type: "button", class: "link", onclick: () => onExport(i) }, "Export CSV") }]
        : []),
    ],
    insights,
    "No insight: run an analysis first.",
  );
}

export async function insightsPage({ main, args: [chosen] }: PageContext) {
  const service = session.client(InsightsService);
  main.append(h("h1", {}, "Insights"));
  const instances = (await attempt(main, allInstances)) ?? [];
  if (instances.length === 0) {
    main.append(section("No instance", h("p", {}, "Connect an instance and run an analysis to see insights: ", h("a", { href: "#/instances" }, "Instances"))));
    return;
  }
  const instanceId = instances.some((i) => i.id === chosen) ? chosen : instances[0].id;
  const picker = choice("Instance", "instance", instances.map((i) => [i.id, i.name]));
  const select = picker.querySelector("select") as HTMLSelectElement;
  select.value = instanceId;
  select.addEventListener("change", () => (window.location.hash = `#/insights/${select.value}`));
  main.append(h("div", { class: "row" }, picker));

  const exports = section("Exports");
  const exported = h("ul", { "aria-live": "polite" });
  exports.append(h("p", { class: "muted" }, "Choose Export on an insight; the file is ready in moments and the link stays valid for a while."), exported);
  async function exportInsight(insight: Insight) {
    await attempt(exports, async () => {
      let job = await service.exportInsight({ insightId: insight.id, format: ExportFormat.CSV });
      const item = h("li", {}, `${insight.title}: preparing…`);
      exported.prepend(item);
      const deadline = Date.now() + 60_000;
      while (job.state === ExportState.PENDING && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        job = await service.getExport({ exportId: job.id });
      }
      item.replaceChildren(
        job.state === ExportState.READY
          ? h("a", { href: job.downloadUri, download: job.fileName }, `${job.fileName} (${job.sizeBytes} bytes)`)
          : `${insight.title}: ${enumLabel(ExportState, job.state)} ${job.error}`,
      );
    });
  }

  const current = section("Current insights");
  main.append(current);
  await attempt(current, async () => {
    const found = await service.getInstanceInsights({ instanceId });
    current.append(
      h(
        "div",
        { class: "stats" },
        h("div", { class: "stat big" }, h("span", { class: "stat-label" }, "Posture score"), h("span", { class: "stat-value" }, found.postureScore.toFixed(1))),
      ),
      metrics(found.metrics.filter((m) => m.name !== "posture_score")),
      insightTable("Current insights", found.insights, (i) => void exportInsight(i)),
    );
  });

  const trends = section("Trends");
  main.append(trends);
  await attempt(trends, async () => {
    const response = await service.getInsightTrends({ instanceId });
    trends.append(
      lineChart(
        "Scores over the last 90 days",
        response.series.map((s) => ({ name: s.metric.replace(/_/g, " "), points: s.points.map((p) => ({ time: p.time ? timestampDate(p.time) : new Date(0), value: p.value })) })),
      ),
    );
  });

  const history = section("History");
  main.append(history);
  await attempt(history, async () => {
    const page = await service.getInsightHistory({ instanceId, pageSize: 50 });
    history.append(
      table(
        "Analysis history",
        [
          { title: "When", value: (e: InsightHistoryEntry) => Number(e.createTime?.seconds ?? 0), render: (e) => time(e.createTime) },
          { title: "Analysis", value: (e) => enumLabel(AnalysisType, e.analysisType) },
          { title: "Posture", value: (e) => e.postureScore, numeric: true, render: (e) => e.postureScore.toFixed(1) },
          { title: "New", value: (e) => e.newInsightIds.length, numeric: true },
          { title: "Persisting", value: (e) => e.persistingInsightIds.length, numeric: true },
          { title: "Resolved", value: (e) => e.resolvedInsightIds.length, numeric: true },
        ],
        page.entries,
      ),
    );
  });

  const compare = section("Compare");
  const compared = h("div");
  compare.append(
    form(
      "Compare",
      [
        choice("With instance", "right", instances.map((i) => [i.id, i.name])),
        field("As it stood on (empty: now)", "at", { type: "date", required: false }),
      ],
      "Compare",
      async ({ right, at }) => {
        const response = await service.compareInsights({
          leftInstanceId: instanceId,
          rightInstanceId: right,
          rightTime: at ? timestampFromDate(new Date(at)) : undefined,
        });
        compared.replaceChildren(
          table(
            "Metrics compared",
            [
              { title: "Metric", value: (m: MetricComparison) => m.metric.replace(/_/g, " ") },
              { title: "This instance, now", value: (m) => m.leftValue, numeric: true, render: (m) => m.leftValue.toFixed(1) },
              { title: "Compared with", value: (m) => m.rightValue, numeric: true, render: (m) => m.rightValue.toFixed(1) },
              { title: "Change", value: (m) => m.delta, numeric: true, render: (m) => `${m.delta > 0 ? "+" : ""}${m.delta.toFixed(1)}` },
            ],
            response.metrics,
          ),
          h("p", { class: "muted" }, `${response.onlyLeft.length} insights only here, ${response.onlyRight.length} only on the other side.`),
        );
      },
    ),
    compared,
  );

  const search = section("Search");
  const found = h("div");
  search.append(
    form(
      "Search insights",
      [field("Words", "query", { type: "search", required: false }), choice("At least", "severity", [Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL].map((s) => [String(s), enumLabel(Severity, s)]))],
      "Search",
      async ({ query, severity }) => {
        const response = await service.searchInsights({ query, minSeverity: Number(severity) as Severity, instanceIds: [instanceId], pageSize: 100 });
        found.replaceChildren(h("p", { class: "muted" }, `${response.totalSize} found`), insightTable("Search results", response.insights));
      },
    ),
    found,
  );
  main.append(compare, search, exports);
}
