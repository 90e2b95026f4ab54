// Analyses: starting one on an instance, its progress, and its results with links to the
// ServiceNow records they are about (and, for risks, the risk matrix).

import {
  AnalysisService,
  AnalysisType,
  EffectivenessRating,
  JobState,
} from "../../../sdk/typescript/src/gen/complianceiq/analysis/v1/analysis_pb.js";
import type { AnalysisJob, AnalysisResult } from "../../../sdk/typescript/src/gen/complianceiq/analysis/v1/analysis_pb.js";
import { items } from "../../../sdk/typescript/src/index.js";
import type { PageContext } from "../main.js";
import * as session from "../session.js";
import { attempt, choice, enumLabel, form, h, heatMap, metrics, recordLink, section, statusBadge, table, time } from "../ui.js";
import { allInstances } from "./instances.js";

function jobBadge(state: JobState): HTMLElement {
  return statusBadge(JobState, state, { good: [JobState.SUCCEEDED], bad: [JobState.FAILED], busy: [JobState.QUEUED, JobState.RUNNING] });
}

const STARTS: [AnalysisType, string][] = [
  [AnalysisType.CONTROL_EFFECTIVENESS, "Control effectiveness"],
  [AnalysisType.RISK_CORRELATION, "Risk correlation"],
  [AnalysisType.COMPLIANCE_GAP, "Compliance gaps"],
  [AnalysisType.PREDICTIVE, "Predicted control failures"],
  [AnalysisType.ANOMALY_DETECTION, "Indicator anomalies"],
];

function start(type: AnalysisType, instanceId: string): Promise<AnalysisJob> {
  const analysis = session.client(AnalysisService);
  switch (type) {
    case AnalysisType.RISK_CORRELATION:
      return analysis.analyzeRisks({ instanceId });
    case AnalysisType.COMPLIANCE_GAP:
      return analysis.analyzeCompliance({ instanceId });
    case AnalysisType.PREDICTIVE:
      return analysis.runPredictiveAnalysis({ instanceId });
    case AnalysisType.ANOMALY_DETECTION:
      return analysis.detectAnomalies({ instanceId });
    default:
      return analysis.analyzeControls({ instanceId });
  }
}

export async function analysesPage({ main, args: [chosen], live }: PageContext) {
  main.append(h("h1", {}, "Analyses"));
  const instances = (await attempt(main, allInstances)) ?? [];
  const name = (id: string) => instances.find((i) => i.id === id)?.name ?? id;
  if (instances.length > 0) {
    const options: [string, string][] = instances.map((i) => [i.id, i.name]);
    if (chosen) options.sort(([a], [b]) => (a === chosen ? -1 : b === chosen ? 1 : 0));
    main.append(
      section(
        "Run an analysis",
        h("p", { class: "muted" }, "Analyses read the instance's data as of its last completed sync."),
        form("Run an analysis", [choice("Instance", "instanceId", options), choice("Analysis", "type", STARTS.map(([t, n]) => [String(t), n]))], "Run analysis", async ({ instanceId, type }) => {
          const job = await start(Number(type) as AnalysisType, instanceId);
          window.location.hash = `#/analysis/${job.id}`;
        }),
      ),
    );
  } else {
    main.append(section("Run an analysis", h("p", {}, "Connect and sync an instance first: ", h("a", { href: "#/instances" }, "Instances"))));
  }
  const jobs = section("Recent analyses");
  const holder = h("div");
  jobs.append(holder);
  main.append(jobs);
  async function draw(): Promise<boolean> {
    const page = await session.client(AnalysisService).listAnalysisJobs({ pageSize: 50 });
    holder.replaceChildren(
      table(
        "Analysis jobs",
        [
          { title: "Started", value: (j: AnalysisJob) => Number(j.createTime?.seconds ?? 0), render: (j) => h("a", { href: `#/analysis/${j.id}` }, time(j.createTime)) },
          { title: "Analysis", value: (j) => enumLabel(AnalysisType, j.type) },
          { title: "Instance", value: (j) => name(j.instanceId) },
          { title: "State", value: (j) => enumLabel(JobState, j.state), render: (j) => jobBadge(j.state) },
          { title: "Score", value: (j) => j.summary?.score ?? 0, numeric: true, render: (j) => (j.state === JobState.SUCCEEDED ? (j.summary?.score ?? 0).toFixed(1) : "—") },
          { title: "Records", value: (j) => Number(j.summary?.recordsAnalyzed ?? 0), numeric: true },
        ],
        page.jobs,
        "No analysis yet.",
      ),
    );
    return page.jobs.some((j) => j.state === JobState.QUEUED || j.state === JobState.RUNNING);
  }
  if (await attempt(jobs, draw)) live(1000, draw);
}

export async function analysisPage({ main, args: [jobId], live }: PageContext) {
  const analysis = session.client(AnalysisService);
  main.append(h("p", {}, h("a", { href: "#/analyses" }, "← Analyses")));
  const head = h("div");
  const body = h("div");
  main.append(head, body);
  async function draw(): Promise<boolean> {
    const job = await analysis.getAnalysisJob({ jobId });
    const running = job.state === JobState.QUEUED || job.state === JobState.RUNNING;
    head.replaceChildren(
      h("h1", {}, enumLabel(AnalysisType, job.type).replace(/^./, (c) => c.toUpperCase())),
      h(
        "p",
        {},
        jobBadge(job.state),
        ` started ${time(job.createTime)}`,
        job.dataAsOfTime ? ` · data as of ${time(job.dataAsOfTime)}` : "",
        job.error ? h("span", { class: "bad-text" }, ` · ${job.error}`) : "",
      ),
      running ? h("progress", { max: 100, value: job.progressPercent, "aria-label": "Analysis progress" }) : "",
    );
    if (!running) await results(job);
    return running;
  }
  async function results(job: AnalysisJob) {
    if (job.state !== JobState.SUCCEEDED) return;
    const all: AnalysisResult[] = [];
    for await (const result of items(analysis.listAnalysisResults, { jobId, pageSize: 500 }, (p) => p.results)) all.push(result);
    const summary = job.summary;
    const severities = Object.entries(summary?.findingsBySeverity ?? {});
    body.replaceChildren(
      section(
        "Summary",
        h(
          "div",
          { class: "stats" },
          h("div", { class: "stat" }, h("span", { class: "stat-label" }, "Score"), h("span", { class: "stat-value", "data-testid": "job-score" }, (summary?.score ?? 0).toFixed(1))),
          h("div", { class: "stat" }, h("span", { class: "stat-label" }, "Records analysed"), h("span", { class: "stat-value" }, String(summary?.recordsAnalyzed ?? 0))),
          h("div", { class: "stat" }, h("span", { class: "stat-label" }, "Results"), h("span", { class: "stat-value", "data-testid": "result-count" }, String(all.length))),
          ...severities.map(([severity, count]) => h("div", { class: "stat" }, h("span", { class: "stat-label" }, `${severity.toLowerCase()} findings`), h("span", { class: "stat-value" }, String(count)))),
        ),
        metrics(summary?.metrics ?? []),
      ),
      job.type === AnalysisType.RISK_CORRELATION ? riskMatrix(all) : "",
      section("Results", resultsTable(all)),
    );
  }
  if (await attempt(main, draw)) live(1000, draw);
}

function resultsTable(all: AnalysisResult[]): HTMLElement {
  const valueNames = [...new Set(all.flatMap((r) => Object.keys(r.values)))].slice(0, 4);
  return table(
    "Analysis results",
    [
      { title: "Record", value: (r: AnalysisResult) => r.subject?.display ?? "", render: (r) => recordLink(r.subject) },
      { title: "Rollup", value: (r) => r.rollup },
      { title: "Score", value: (r) => r.score ?? -1, numeric: true, render: (r) => (r.score === undefined ? "—" : r.score.toFixed(1)) },
      {
        title: "Rating",
        value: (r) => enumLabel(EffectivenessRating, r.rating),
        render: (r) =>
          r.rating
            ? statusBadge(EffectivenessRating, r.rating, { good: [EffectivenessRating.EFFECTIVE], bad: [EffectivenessRating.INEFFECTIVE] })
            : "—",
      },
      ...valueNames.map((name) => ({
        title: name.replace(/_/g, " "),
        value: (r: AnalysisResult) => r.values[name] ?? 0,
        numeric: true,
        render: (r: AnalysisResult) => (r.values[name] === undefined ? "—" : r.values[name].toFixed(2)),
      })),
      { title: "Findings", value: (r) => r.findings.join(", ") },
      { title: "Related records", value: (r) => r.sources.length, numeric: true, render: (r) => h("span", {}, ...r.sources.slice(0, 3).flatMap((s, i) => [i ? ", " : "", recordLink(s)]), r.sources.length > 3 ? ` +${r.sources.length - 3}` : "") },
    ],
    all,
    "The analysis found nothing to report.",
  );
}

/** Risks by inherent score against the effectiveness of the controls that mitigate them. */
function riskMatrix(all: AnalysisResult[]): HTMLElement {
  const risks = all.filter((r) => r.values.inherent_score !== undefined);
  // Bands of a fifth of the scale each (ServiceNow scores likelihood × impact, up to 25).
  const top = Math.max(25, ...risks.map((r) => r.values.inherent_score));
  const step = top / 5;
  const inherentBands = [4, 3, 2, 1, 0].map((b) => `${(b * step).toFixed(0)}–${((b + 1) * step).toFixed(0)}`);
  const effectivenessBands = ["0–20%", "20–40%", "40–60%", "60–80%", "80–100%"];
  const counts = inherentBands.map(() => effectivenessBands.map(() => 0));
  for (const risk of risks) {
    const band = Math.min(4, Math.max(0, Math.floor(risk.values.inherent_score / step)));
    const effectiveness = (risk.values.weighted_effectiveness ?? 0) * 100;
    counts[4 - band][Math.min(4, Math.max(0, Math.floor(effectiveness / 20)))]++;
  }
  return section(
    "Risk matrix",
    h("p", { class: "muted" }, "Risks by inherent score and by the weighted effectiveness of their mitigating controls: the top left holds high risks with weak controls."),
    heatMap("Risks by inherent score and control effectiveness", "Inherent score", inherentBands, "Control effectiveness", effectivenessBands, counts),
  );
}
