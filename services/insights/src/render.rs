//! An insight rendered to a file a person hands on: CSV (one long table), XLSX (a sheet per
//! part) and PDF (the finding, its evidence as tables, and a chart of its score at each
//! analysis, with the effectiveness thresholds).

use complianceiq_kit::time;
use complianceiq_proto::complianceiq::common::v1::ExportFormat;
use complianceiq_proto::complianceiq::insights::v1::Insight;

use complianceiq_kit::document::{CONTENT_WIDTH, MARGIN, Pages, wrap};

use crate::store::Change;

/// What an export holds.
pub struct Document<'a> {
    pub insight: &'a Insight,
    /// The insight's changes, oldest first.
    pub history: &'a [Change],
    /// When it was rendered, microseconds.
    pub generated_at: i64,
}

/// A rendered file.
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

/// Renders `document` as `format`.
pub fn render(document: &Document<'_>, format: ExportFormat) -> Result<Rendered, String> {
    match format {
        ExportFormat::Csv => Ok(Rendered { bytes: csv(document)?, content_type: "text/csv; charset=utf-8" }),
        ExportFormat::Xlsx => Ok(Rendered {
            bytes: xlsx(document).map_err(|e| format!("xlsx: {e}"))?,
            content_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }),
        ExportFormat::Pdf => Ok(Rendered { bytes: pdf(document), content_type: "application/pdf" }),
        ExportFormat::Json => Ok(Rendered {
            bytes: serde_json::to_vec_pretty(&json(document)).map_err(|e| format!("json: {e}"))?,
            content_type: "application/json",
        }),
        ExportFormat::Unspecified => Err("no format".into()),
    }
}

fn rfc3339(micros: i64) -> String {
    time::to_timestamp(micros).to_string()
}

fn severity(insight: &Insight) -> &'static str {
    insight.severity().as_str_name().trim_start_matches("SEVERITY_")
}

fn status(insight: &Insight) -> &'static str {
    insight.status().as_str_name().trim_start_matches("INSIGHT_STATUS_")
}

/// The insight's facts as (field, value) rows.
fn facts(insight: &Insight) -> Vec<(&'static str, String)> {
    let subject = insight.subject.clone().unwrap_or_default();
    let mut rows = vec![
        ("title", insight.title.clone()),
        ("finding", insight.finding.clone()),
        ("severity", severity(insight).to_string()),
        ("status", status(insight).to_string()),
        ("category", insight.category().as_str_name().trim_start_matches("INSIGHT_CATEGORY_").to_string()),
        ("score", insight.score.to_string()),
        ("record", subject.display),
        ("record_table", subject.table),
        ("record_sys_id", subject.sys_id),
        ("record_link", subject.url),
        ("instance_id", insight.instance_id.clone()),
        ("analysis_job_id", insight.analysis_job_id.clone()),
        ("summary", insight.summary.clone()),
    ];
    for (name, time) in [
        ("first_seen", &insight.create_time),
        ("last_seen", &insight.last_seen_time),
        ("resolved", &insight.resolve_time),
    ] {
        if let Some(time) = time {
            rows.push((name, time.to_string()));
        }
    }
    rows
}

/// One table: `section,name,value,detail,link`, so any CSV reader takes it in one pass.
fn csv(document: &Document<'_>) -> Result<Vec<u8>, String> {
    let insight = document.insight;
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    let mut row = |cells: [&str; 5]| writer.write_record(cells).map_err(|e| format!("csv: {e}"));
    row(["section", "name", "value", "detail", "link"])?;
    for (name, value) in facts(insight) {
        row(["insight", name, &value, "", ""])?;
    }
    for (index, text) in insight.recommendations.iter().enumerate() {
        row(["recommendation", &(index + 1).to_string(), text, "", ""])?;
    }
    for metric in &insight.metrics {
        row(["metric", &metric.name, &metric.value.to_string(), &metric.unit, ""])?;
    }
    for record in insight.subject.iter().chain(&insight.sources) {
        row(["record", &record.table, &record.display, &record.sys_id, &record.url])?;
    }
    for change in document.history {
        let score = change.score.map(|score| score.to_string()).unwrap_or_default();
        row(["history", &rfc3339(change.at), &score, change.change, &change.analysis_job_id])?;
    }
    writer.into_inner().map_err(|e| format!("csv: {e}"))
}

fn xlsx(document: &Document<'_>) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Url, Workbook};
    let insight = document.insight;
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let wrap = Format::new().set_text_wrap();

    let sheet = workbook.add_worksheet().set_name("Insight")?;
    sheet.write_string_with_format(0, 0, "Field", &bold)?;
    sheet.write_string_with_format(0, 1, "Value", &bold)?;
    let mut row = 1;
    for (name, value) in facts(insight) {
        sheet.write_string(row, 0, name)?;
        sheet.write_string_with_format(row, 1, value, &wrap)?;
        row += 1;
    }
    for (index, text) in insight.recommendations.iter().enumerate() {
        sheet.write_string(row, 0, format!("recommendation {}", index + 1))?;
        sheet.write_string_with_format(row, 1, text, &wrap)?;
        row += 1;
    }
    sheet.set_column_width(0, 18)?;
    sheet.set_column_width(1, 90)?;

    let sheet = workbook.add_worksheet().set_name("Metrics")?;
    for (column, title) in ["Metric", "Value", "Unit"].into_iter().enumerate() {
        sheet.write_string_with_format(0, column as u16, title, &bold)?;
    }
    for (index, metric) in insight.metrics.iter().enumerate() {
        let row = index as u32 + 1;
        sheet.write_string(row, 0, &metric.name)?;
        sheet.write_number(row, 1, metric.value)?;
        sheet.write_string(row, 2, &metric.unit)?;
    }
    sheet.set_column_width(0, 28)?;

    let sheet = workbook.add_worksheet().set_name("Records")?;
    for (column, title) in ["Table", "Record", "sys_id", "Link"].into_iter().enumerate() {
        sheet.write_string_with_format(0, column as u16, title, &bold)?;
    }
    for (index, record) in insight.subject.iter().chain(&insight.sources).enumerate() {
        let row = index as u32 + 1;
        sheet.write_string(row, 0, &record.table)?;
        sheet.write_string(row, 1, &record.display)?;
        sheet.write_string(row, 2, &record.sys_id)?;
        if !record.url.is_empty() {
            sheet.write_url(row, 3, Url::new(&record.url))?;
        }
    }
    sheet.set_column_width(0, 32)?;
    sheet.set_column_width(2, 34)?;

    let sheet = workbook.add_worksheet().set_name("History")?;
    for (column, title) in ["Time", "Change", "Score", "Analysis job"].into_iter().enumerate() {
        sheet.write_string_with_format(0, column as u16, title, &bold)?;
    }
    for (index, change) in document.history.iter().enumerate() {
        let row = index as u32 + 1;
        sheet.write_string(row, 0, rfc3339(change.at))?;
        sheet.write_string(row, 1, change.change)?;
        if let Some(score) = change.score {
            sheet.write_number(row, 2, score)?;
        }
        sheet.write_string(row, 3, &change.analysis_job_id)?;
    }
    sheet.set_column_width(0, 28)?;
    workbook.save_to_buffer()
}

fn json(document: &Document<'_>) -> serde_json::Value {
    let insight = document.insight;
    let record = |r: &complianceiq_proto::complianceiq::analysis::v1::RecordLink| serde_json::json!({"table": r.table, "sysId": r.sys_id, "display": r.display, "url": r.url});
    serde_json::json!({
        "insight": facts(insight).into_iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v))).collect::<serde_json::Map<_, _>>(),
        "recommendations": insight.recommendations,
        "metrics": insight.metrics.iter().map(|m| serde_json::json!({"name": m.name, "value": m.value, "unit": m.unit})).collect::<Vec<_>>(),
        "records": insight.subject.iter().chain(&insight.sources).map(record).collect::<Vec<_>>(),
        "history": document.history.iter().map(|c| serde_json::json!({"time": rfc3339(c.at), "change": c.change, "score": c.score, "analysisJobId": c.analysis_job_id})).collect::<Vec<_>>(),
        "generatedAt": rfc3339(document.generated_at),
    })
}

/// The insight's own drawing on the kit's pages.
trait ScoreChart {
    fn score_chart(&mut self, history: &[Change]);
}

impl ScoreChart for Pages {
    /// Bars of the score at each analysis (0 to 100), with the 50 and 80 thresholds dashed.
    fn score_chart(&mut self, history: &[Change]) {
        let height = 150.0;
        let (left, width) = (MARGIN + 30.0, CONTENT_WIDTH - 30.0);
        self.room(height + 40.0);
        self.y -= height + 10.0;
        let bottom = self.y;
        let scale = |value: f64| bottom + (value.clamp(0.0, 100.0) as f32) * height / 100.0;
        for (value, dashed) in [(0.0, false), (50.0, true), (80.0, true), (100.0, false)] {
            let y = scale(value);
            let page = self.page();
            page.set_stroke_rgb(0.6, 0.6, 0.6);
            page.set_line_width(0.5);
            if dashed {
                page.set_dash_pattern([3.0, 3.0], 0.0);
            }
            page.move_to(left, y);
            page.line_to(left + width, y);
            page.stroke();
            page.set_dash_pattern([], 0.0);
            self.text_at(MARGIN, y - 3.0, &format!("{value:.0}"), 8.0, false);
        }
        let bars = history.len().max(1) as f32;
        let slot = width / bars;
        let bar = (slot * 0.6).min(40.0);
        for (index, change) in history.iter().enumerate() {
            let x = left + slot * index as f32 + (slot - bar) / 2.0;
            let value = change.score.unwrap_or(0.0);
            let (r, g, b) = match change.score {
                None => (0.7, 0.7, 0.7),
                Some(score) if score >= 80.0 => (0.18, 0.55, 0.34),
                Some(score) if score >= 50.0 => (0.93, 0.66, 0.13),
                Some(_) => (0.80, 0.22, 0.18),
            };
            let page = self.page();
            page.set_fill_rgb(r, g, b);
            page.rect(x, bottom, bar, (scale(value) - bottom).max(0.5));
            page.fill_nonzero();
            page.set_fill_rgb(0.0, 0.0, 0.0);
            let label = match change.score {
                Some(score) => format!("{score}"),
                None => "resolved".into(),
            };
            self.text_at(x, scale(value) + 3.0, &label, 7.0, false);
            let date = rfc3339(change.at);
            self.text_at(x, bottom - 10.0, date.get(..10).unwrap_or(&date), 6.5, false);
        }
        self.y = bottom - 16.0;
    }
}

fn pdf(document: &Document<'_>) -> Vec<u8> {
    let insight = document.insight;
    let mut pages = Pages::new();
    pages.line("ComplianceIQ insight report", 9.0, false);
    pages.gap(6.0);
    for line in wrap(&insight.title, 16.0, CONTENT_WIDTH) {
        pages.line(&line, 16.0, true);
    }
    pages.gap(4.0);
    let subject = insight.subject.clone().unwrap_or_default();
    pages.paragraph(
        &format!(
            "Severity {} | Status {} | Finding {} | Record {} ({})",
            severity(insight),
            status(insight),
            insight.finding,
            subject.display,
            subject.table
        ),
        9.0,
    );
    if !subject.url.is_empty() {
        pages.paragraph(&format!("Open in ServiceNow: {}", subject.url), 8.0);
    }
    pages.gap(8.0);
    pages.line("Finding", 12.0, true);
    pages.paragraph(&insight.summary, 10.0);
    if !insight.recommendations.is_empty() {
        pages.gap(8.0);
        pages.line("Recommendations", 12.0, true);
        for (index, text) in insight.recommendations.iter().enumerate() {
            pages.paragraph(&format!("{}. {text}", index + 1), 10.0);
        }
    }
    pages.gap(8.0);
    pages.line("Evidence", 12.0, true);
    let metrics: Vec<Vec<String>> =
        insight.metrics.iter().map(|m| vec![m.name.clone(), m.value.to_string(), m.unit.clone()]).collect();
    pages.table(&["Metric", "Value", "Unit"], &[220.0, 120.0, 155.0], &metrics);
    pages.gap(8.0);
    let records: Vec<Vec<String>> = insight
        .subject
        .iter()
        .chain(&insight.sources)
        .map(|r| vec![r.table.clone(), r.display.clone(), r.sys_id.clone()])
        .collect();
    pages.table(&["Table", "Record", "sys_id"], &[170.0, 120.0, 205.0], &records);
    pages.gap(10.0);
    pages.line("Score at each analysis", 12.0, true);
    pages.score_chart(document.history);
    let history: Vec<Vec<String>> = document
        .history
        .iter()
        .map(|c| vec![rfc3339(c.at), c.change.to_string(), c.score.map(|s| s.to_string()).unwrap_or_default()])
        .collect();
    pages.table(&["Time", "Change", "Score"], &[200.0, 120.0, 175.0], &history);

    pages.finish(&insight.title, |page, count| {
        format!(
            "Generated {} by ComplianceIQ | insight {} | page {page} of {count}",
            rfc3339(document.generated_at),
            insight.id
        )
    })
}

#[cfg(test)]
mod tests {
    use complianceiq_proto::complianceiq::analysis::v1::RecordLink;
    use complianceiq_proto::complianceiq::common::v1::Metric;

    use super::*;

    fn insight() -> Insight {
        Insight {
            id: "i-1".into(),
            title: "Control CTRL0001 is ineffective (score 30)".into(),
            summary: "3 of 10 indicator results passed. ".repeat(30),
            finding: "CONTROL_INEFFECTIVE".into(),
            score: 30.0,
            metrics: vec![Metric { name: "passed".into(), value: 3.0, ..Default::default() }],
            recommendations: vec!["Review, \"quote\", and remediate.".into()],
            subject: Some(RecordLink {
                table: "sn_compliance_control".into(),
                sys_id: "abc".into(),
                display: "CTRL0001".into(),
                url: "https://x/nav".into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn every_format_renders_and_csv_quotes_what_needs_it() {
        let insight = insight();
        let history =
            [Change { analysis_job_id: "j".into(), insight_id: "i-1".into(), change: "new", score: Some(30.0), at: 1 }];
        let document = Document { insight: &insight, history: &history, generated_at: 0 };
        let csv = String::from_utf8(render(&document, ExportFormat::Csv).unwrap().bytes).unwrap();
        assert!(csv.starts_with("section,name,value,detail,link\n"));
        assert!(csv.contains("recommendation,1,\"Review, \"\"quote\"\", and remediate.\",,"), "{csv}");
        let xlsx = render(&document, ExportFormat::Xlsx).unwrap().bytes;
        assert_eq!(&xlsx[..2], b"PK", "a zip package");
        let pdf = render(&document, ExportFormat::Pdf).unwrap().bytes;
        assert!(pdf.starts_with(b"%PDF-") && pdf.ends_with(b"%%EOF"));
        assert!(render(&document, ExportFormat::Unspecified).is_err());
    }
}
