//! A custom report rendered to a file: one table of the chosen metrics for the selection as a
//! whole (combined as the organization metrics are) and for each instance, each value beside
//! the one `comparison_days` earlier. Numbers are written as the API returns them. The
//! report's `framework_coverage` item lists each policy's coverage, per instance.

use complianceiq_kit::document::{CONTENT_WIDTH, Pages};
use complianceiq_kit::time;
use complianceiq_proto::complianceiq::common::v1::ExportFormat;

use complianceiq_proto::complianceiq::dashboard::v1::FrameworkCoverage;

use crate::metrics::{self, FRAMEWORK_COVERAGE, Values};

/// One block of values: the selection's, or one instance's.
pub struct Section {
    /// `All selected instances`, or the instance's host.
    pub title: String,
    /// The instance's id (empty for the selection).
    pub instance_id: String,
    pub now: Values,
    pub then: Values,
    /// Coverage per policy (instances only).
    pub frameworks: Vec<FrameworkCoverage>,
}

/// What a rendering holds.
pub struct Content<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub metrics: &'a [String],
    pub comparison_days: i32,
    pub sections: Vec<Section>,
    /// Microseconds since the epoch.
    pub generated_at: i64,
}

/// A rendered file.
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

/// A value as the API shows it; a dash where there is none (an analysis never run).
pub fn number(value: Option<f64>) -> String {
    value.map(|value| value.to_string()).unwrap_or_else(|| "-".into())
}

/// A section's `(metric, value, previous, unit)` rows, in the report's order; coverage per
/// framework as one row per policy (`framework_coverage: <policy>`, no previous value).
fn section_rows(content: &Content<'_>, section: &Section) -> Vec<[String; 4]> {
    let mut rows = Vec::new();
    for name in content.metrics {
        if name == FRAMEWORK_COVERAGE {
            rows.extend(section.frameworks.iter().map(|framework| {
                [
                    format!("{FRAMEWORK_COVERAGE}: {}", framework.name),
                    number(Some(framework.coverage_percent)),
                    "-".into(),
                    "percent".into(),
                ]
            }));
            continue;
        }
        rows.push([
            name.clone(),
            number(section.now.get(name).copied()),
            number(section.then.get(name).copied()),
            metrics::unit(name).to_string(),
        ]);
    }
    rows
}

/// `(scope, instance id, metric, value, previous, unit)` rows, in the report's order.
fn rows(content: &Content<'_>) -> Vec<[String; 6]> {
    let mut rows = Vec::new();
    for section in &content.sections {
        for [metric, value, previous, unit] in section_rows(content, section) {
            rows.push([section.title.clone(), section.instance_id.clone(), metric, value, previous, unit]);
        }
    }
    rows
}

const HEADERS: [&str; 6] = ["scope", "instance_id", "metric", "value", "previous", "unit"];

/// Renders `content` as `format`.
pub fn render(content: &Content<'_>, format: ExportFormat) -> Result<Rendered, String> {
    Ok(match format {
        ExportFormat::Pdf => Rendered { bytes: pdf(content), content_type: "application/pdf" },
        ExportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(HEADERS).map_err(|e| format!("csv: {e}"))?;
            for row in rows(content) {
                writer.write_record(&row).map_err(|e| format!("csv: {e}"))?;
            }
            let bytes = writer.into_inner().map_err(|e| format!("csv: {e}"))?;
            Rendered { bytes, content_type: "text/csv; charset=utf-8" }
        }
        ExportFormat::Xlsx => Rendered {
            bytes: xlsx(content).map_err(|e| format!("xlsx: {e}"))?,
            content_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        },
        ExportFormat::Json => {
            let rows: Vec<serde_json::Value> = rows(content)
                .into_iter()
                .map(|row| {
                    serde_json::Value::Object(HEADERS.iter().map(|h| h.to_string()).zip(row.map(Into::into)).collect())
                })
                .collect();
            let document = serde_json::json!({
                "report": content.name,
                "generated_at": time::to_timestamp(content.generated_at).to_string(),
                "comparison_days": content.comparison_days,
                "rows": rows,
            });
            let bytes = serde_json::to_vec_pretty(&document).map_err(|e| format!("json: {e}"))?;
            Rendered { bytes, content_type: "application/json" }
        }
        ExportFormat::Unspecified => return Err("no format".into()),
    })
}

fn pdf(content: &Content<'_>) -> Vec<u8> {
    let mut pages = Pages::new();
    pages.line(content.name, 18.0, true);
    if !content.description.is_empty() {
        pages.gap(4.0);
        pages.paragraph(content.description, 10.0);
    }
    pages.gap(4.0);
    pages.paragraph(
        &format!(
            "Generated {}. Previous values are those of {} days earlier.",
            time::to_timestamp(content.generated_at),
            content.comparison_days
        ),
        9.0,
    );
    let widths = [CONTENT_WIDTH * 0.46, CONTENT_WIDTH * 0.18, CONTENT_WIDTH * 0.18, CONTENT_WIDTH * 0.18];
    for section in &content.sections {
        pages.gap(10.0);
        pages.line(&section.title, 12.0, true);
        let rows: Vec<Vec<String>> = section_rows(content, section).into_iter().map(Vec::from).collect();
        pages.table(&["Metric", "Value", "Previous", "Unit"], &widths, &rows);
    }
    let name = content.name.to_string();
    pages.finish(&name, |page, pages| format!("ComplianceIQ - {name} - page {page} of {pages}"))
}

fn xlsx(content: &Content<'_>) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let sheet = workbook.add_worksheet().set_name("Report")?;
    for (column, title) in HEADERS.iter().enumerate() {
        sheet.write_string_with_format(0, column as u16, *title, &bold)?;
    }
    for (index, row) in rows(content).iter().enumerate() {
        let line = index as u32 + 1;
        for (column, cell) in row.iter().enumerate() {
            // Values stay numbers in the sheet, so they can be charted and summed.
            match cell.parse::<f64>() {
                Ok(value) if column == 3 || column == 4 => sheet.write_number(line, column as u16, value)?,
                _ => sheet.write_string(line, column as u16, cell)?,
            };
        }
    }
    sheet.set_column_width(0, 28)?;
    sheet.set_column_width(1, 38)?;
    sheet.set_column_width(2, 30)?;
    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content() -> Content<'static> {
        static METRICS: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["posture_score".into(), "controls_effective".into()]);
        Content {
            name: "Board pack",
            description: "Monthly posture",
            metrics: &METRICS,
            comparison_days: 30,
            sections: vec![Section {
                title: "All selected instances".into(),
                instance_id: String::new(),
                now: [("posture_score".to_string(), 72.5)].into(),
                then: Values::new(),
                frameworks: Vec::new(),
            }],
            generated_at: 1_767_225_600_000_000,
        }
    }

    #[test]
    fn every_format_holds_the_values_and_a_dash_where_there_is_none() {
        let csv = String::from_utf8(render(&content(), ExportFormat::Csv).unwrap().bytes).unwrap();
        assert_eq!(
            csv,
            "scope,instance_id,metric,value,previous,unit\nAll selected instances,,posture_score,72.5,-,score\n\
             All selected instances,,controls_effective,-,-,controls\n"
        );
        let json: serde_json::Value =
            serde_json::from_slice(&render(&content(), ExportFormat::Json).unwrap().bytes).unwrap();
        assert_eq!(json["rows"][0]["value"], "72.5");
        let pdf = render(&content(), ExportFormat::Pdf).unwrap();
        assert!(pdf.bytes.starts_with(b"%PDF"));
        let xlsx = render(&content(), ExportFormat::Xlsx).unwrap();
        assert!(xlsx.bytes.starts_with(b"PK"), "an OOXML zip");
        assert!(render(&content(), ExportFormat::Unspecified).is_err());
    }
}
