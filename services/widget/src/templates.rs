//! The built-in templates, and a widget version rendered into a Service Portal widget record
//! (`sp_widget`: name, id, template, css, client_script, script, option_schema).
//!
//! The widget reads its numbers from the ComplianceIQ REST API in its server script, with
//! ServiceNow's outbound REST (`sn_ws.RESTMessageV2`) and an organization API key with read
//! permissions that an administrator keeps in the system property `complianceiq.api_key`
//! (a password2 property: ServiceNow stores it encrypted). The key is never part of the
//! record. Every value the platform writes into the code is JSON-encoded for JavaScript and
//! escaped for HTML, so any name yields valid code.

use std::collections::BTreeMap;

use complianceiq_proto::complianceiq::widget::v1::{Widget, WidgetConfig, WidgetTemplate, WidgetType};

/// The system property holding the API key in ServiceNow.
pub const API_KEY_PROPERTY: &str = "complianceiq.api_key";
/// The shortest refresh a widget may ask for.
pub const MIN_REFRESH_SECONDS: i32 = 60;
const DEFAULT_REFRESH_SECONDS: i32 = 300;

/// One built-in template: what it shows and where it reads it.
pub struct BuiltIn {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub widget_type: WidgetType,
    /// The REST path it reads (`{instance_id}` from the widget's `instance_id` filter).
    pub data_path: &'static str,
    /// Whether it needs the `instance_id` filter.
    pub per_instance: bool,
    /// Permission the API key needs.
    pub permission: &'static str,
}

/// The templates shipped with the platform.
pub const BUILT_IN: [BuiltIn; 5] = [
    BuiltIn {
        id: "score-gauge",
        name: "Posture score gauge",
        description: "The organization's posture score (0 to 100) as a gauge, with the change over 30 days.",
        widget_type: WidgetType::Scorecard,
        data_path: "/api/v1/dashboard/summary",
        per_instance: false,
        permission: "insights:read",
    },
    BuiltIn {
        id: "control-heatmap",
        name: "Control effectiveness heat map",
        description: "Controls per instance by effectiveness rating (effective, partially, ineffective, not tested).",
        widget_type: WidgetType::Heatmap,
        data_path: "/api/v1/dashboard/organization/metrics",
        per_instance: false,
        permission: "insights:read",
    },
    BuiltIn {
        id: "risk-matrix",
        name: "5x5 risk matrix",
        description: "Risks of an instance by inherent score (columns) and computed residual score (rows), \
                      each in five bands of 20 points, from the latest risk correlation analysis.",
        widget_type: WidgetType::Heatmap,
        data_path: "/api/v1/analysis/jobs?instance_id={instance_id}&type=ANALYSIS_TYPE_RISK_CORRELATION\
                    &state=JOB_STATE_SUCCEEDED&page_size=1",
        per_instance: true,
        permission: "analysis:read",
    },
    BuiltIn {
        id: "gap-list",
        name: "Compliance gap list",
        description: "Open compliance gaps of an instance, most severe first.",
        widget_type: WidgetType::Table,
        data_path: "/api/v1/insights/{instance_id}?categories=INSIGHT_CATEGORY_COMPLIANCE_GAP",
        per_instance: true,
        permission: "insights:read",
    },
    BuiltIn {
        id: "trend-line",
        name: "Posture trend line",
        description: "An instance's posture score at each analysis over the last 90 days.",
        widget_type: WidgetType::Chart,
        data_path: "/api/v1/insights/{instance_id}/trends?metrics=posture_score",
        per_instance: true,
        permission: "insights:read",
    },
];

/// The built-in template `id`.
pub fn built_in(id: &str) -> Option<&'static BuiltIn> {
    BUILT_IN.iter().find(|template| template.id == id)
}

/// The built-in that renders a widget of `widget_type` made from no template (or a custom one).
pub fn for_type(widget_type: WidgetType) -> Option<&'static BuiltIn> {
    BUILT_IN.iter().find(|template| template.widget_type == widget_type).or(match widget_type {
        WidgetType::InsightList => built_in("gap-list"),
        _ => None,
    })
}

/// A built-in as the API lists it.
pub fn proto(template: &BuiltIn) -> WidgetTemplate {
    WidgetTemplate {
        id: template.id.into(),
        name: template.name.into(),
        description: format!(
            "{} Reads {} with the API key in the ServiceNow property {API_KEY_PROPERTY}, which needs {}.",
            template.description, template.data_path, template.permission
        ),
        r#type: template.widget_type as i32,
        default_config: Some(WidgetConfig {
            data_source: template.data_path.into(),
            refresh_interval_seconds: DEFAULT_REFRESH_SECONDS,
            ..Default::default()
        }),
        built_in: true,
        ..Default::default()
    }
}

/// The sp_widget record's id for a widget: stable across versions, so a new version updates
/// the same record.
pub fn record_key(widget_id: &str) -> String {
    format!("ciq_{}", widget_id.replace('-', ""))
}

/// A value as a JavaScript literal that is also safe inside HTML (`<`, `>`, `&` escaped).
fn js(value: &str) -> String {
    serde_json::Value::String(value.to_string())
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn html(value: &str) -> String {
    value.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The data path with the widget's filters in it.
fn data_path(template: &BuiltIn, filters: &BTreeMap<String, String>) -> String {
    let instance = filters.get("instance_id").map(String::as_str).unwrap_or_default();
    template.data_path.replace("{instance_id}", instance)
}

/// What each template's server script does with the answer (`body`), into `data`.
fn server_shaping(template: &BuiltIn) -> &'static str {
    match template.id {
        "score-gauge" => {
            "data.score = body.postureScore || 0;\n    var previous = null;\n    (body.metrics || []).forEach(function (metric) {\n      if (metric.name === 'posture_score' && metric.previousValue !== undefined) { previous = metric.previousValue; }\n    });\n    data.delta = previous === null ? null : Math.round((data.score - previous) * 10) / 10;"
        }
        "control-heatmap" => {
            "var ratings = ['controls_effective', 'controls_partially_effective', 'controls_ineffective', 'controls_not_tested'];\n    data.rows = (body.instances || []).map(function (instance) {\n      var values = {};\n      (instance.metrics || []).forEach(function (metric) { values[metric.name] = metric.value; });\n      return { instance: instance.instanceId, cells: ratings.map(function (name) { return values[name] || 0; }) };\n    });"
        }
        "risk-matrix" => {
            "var job = (body.jobs || [])[0];\n    data.matrix = [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]];\n    if (job) {\n      var results = fetchJson(base + '/api/v1/analysis/jobs/' + encodeURIComponent(job.id) + '/results?page_size=1000');\n      var band = function (value) { return Math.max(0, Math.min(4, Math.floor((value || 0) / 20))); };\n      (results.results || []).forEach(function (result) {\n        var values = result.values || {};\n        if (result.rollup) { return; }\n        data.matrix[4 - band(values.computed_residual)][band(values.inherent_score)] += 1;\n      });\n    }"
        }
        "gap-list" => {
            "data.gaps = (body.insights || []).map(function (insight) {\n      return { title: insight.title, severity: (insight.severity || '').replace('SEVERITY_', ''), link: (insight.subject || {}).url || '' };\n    });"
        }
        _ => {
            "var series = (body.series || [])[0] || { points: [] };\n    data.points = (series.points || []).map(function (point) { return { time: point.time, value: point.value }; });"
        }
    }
}

fn markup(template: &BuiltIn, title: &str) -> String {
    let title = html(title);
    let body = match template.id {
        "score-gauge" => {
            r#"<div class="ciq-gauge">
    <svg viewBox="0 0 120 70" role="img" aria-label="Posture score">
      <path d="M10 60 A50 50 0 0 1 110 60" class="ciq-track"></path>
      <path d="M10 60 A50 50 0 0 1 110 60" class="ciq-fill" ng-attr-stroke-dasharray="{{c.dash()}}"></path>
    </svg>
    <div class="ciq-score">{{c.data.score}}</div>
    <div class="ciq-delta" ng-if="c.data.delta !== null">{{c.data.delta > 0 ? '+' : ''}}{{c.data.delta}} in 30 days</div>
  </div>"#
        }
        "control-heatmap" => {
            r#"<table class="ciq-heatmap">
    <thead><tr><th>Instance</th><th>Effective</th><th>Partially</th><th>Ineffective</th><th>Not tested</th></tr></thead>
    <tbody>
      <tr ng-repeat="row in c.data.rows"><td>{{row.instance}}</td><td ng-repeat="cell in row.cells track by $index" ng-style="c.shade(cell)">{{cell}}</td></tr>
    </tbody>
  </table>"#
        }
        "risk-matrix" => {
            r#"<table class="ciq-matrix">
    <caption>Residual (rows) by inherent score (columns)</caption>
    <tbody>
      <tr ng-repeat="row in c.data.matrix track by $index"><td ng-repeat="cell in row track by $index" ng-style="c.shade(cell)">{{cell}}</td></tr>
    </tbody>
  </table>"#
        }
        "gap-list" => {
            r#"<ul class="ciq-gaps">
    <li ng-repeat="gap in c.data.gaps"><span class="ciq-severity">{{gap.severity}}</span> <a ng-href="{{gap.link}}" target="_blank">{{gap.title}}</a></li>
    <li ng-if="!c.data.gaps.length">No open compliance gaps.</li>
  </ul>"#
        }
        _ => {
            r#"<svg class="ciq-trend" viewBox="0 0 300 100" role="img" aria-label="Posture trend">
    <polyline fill="none" class="ciq-line" ng-attr-points="{{c.polyline()}}"></polyline>
  </svg>"#
        }
    };
    format!(
        "<div class=\"ciq-widget\">\n  <h3 class=\"ciq-title\">{title}</h3>\n  <div class=\"ciq-error\" ng-if=\"c.data.error\">{{{{c.data.error}}}}</div>\n  {body}\n</div>\n"
    )
}

const CSS: &str = ".ciq-widget { font-family: inherit; padding: 8px; }
.ciq-title { margin: 0 0 8px; font-size: 16px; }
.ciq-error { color: #b00020; }
.ciq-gauge { text-align: center; }
.ciq-track { fill: none; stroke: #e0e0e0; stroke-width: 10; }
.ciq-fill { fill: none; stroke: #2e7d32; stroke-width: 10; }
.ciq-score { font-size: 28px; font-weight: bold; }
.ciq-heatmap, .ciq-matrix { border-collapse: collapse; width: 100%; }
.ciq-heatmap td, .ciq-matrix td, .ciq-heatmap th { border: 1px solid #ddd; padding: 4px; text-align: center; }
.ciq-line { stroke: #1565c0; stroke-width: 2; }
";

/// The sp_widget columns of a widget version: `widget` as it stood at that version, read
/// from `public_url`.
pub fn record(widget: &Widget, public_url: &str) -> Result<BTreeMap<String, String>, String> {
    let widget_type = widget.r#type();
    let template = built_in(&widget.template_id)
        .or_else(|| for_type(widget_type))
        .ok_or_else(|| format!("no template renders a widget of type {}", widget_type.as_str_name()))?;
    let config = widget.config.clone().unwrap_or_default();
    let filters: BTreeMap<String, String> = config.filters.into_iter().collect();
    let refresh =
        if config.refresh_interval_seconds == 0 { DEFAULT_REFRESH_SECONDS } else { config.refresh_interval_seconds };
    let base = public_url.trim_end_matches('/');
    let script = format!(
        "(function () {{
  var base = {base};
  var key = gs.getProperty({property}, '');
  function fetchJson(url) {{
    var request = new sn_ws.RESTMessageV2();
    request.setEndpoint(url);
    request.setHttpMethod('get');
    request.setRequestHeader('Accept', 'application/json');
    request.setRequestHeader('X-API-Key', key);
    request.setHttpTimeout(10000);
    var response = request.execute();
    if (response.getStatusCode() !== 200) {{
      throw new Error('ComplianceIQ answered ' + response.getStatusCode());
    }}
    return JSON.parse(response.getBody());
  }}
  data.widget = {widget_id};
  data.version = {version};
  data.refreshSeconds = {refresh};
  if (!key) {{
    data.error = 'Set the system property ' + {property} + ' to a ComplianceIQ API key with read access.';
    return;
  }}
  try {{
    var body = fetchJson(base + {path});
    {shaping}
  }} catch (error) {{
    data.error = 'ComplianceIQ data is unavailable: ' + error.message;
  }}
}})();
",
        base = js(base),
        property = js(API_KEY_PROPERTY),
        widget_id = js(&widget.id),
        version = widget.version,
        refresh = refresh,
        path = js(&data_path(template, &filters)),
        shaping = server_shaping(template),
    );
    let client_script = "api.controller = function ($scope, $interval) {
  var c = this;
  c.dash = function () {
    var length = 157;
    return (length * (c.data.score || 0) / 100) + ' ' + length;
  };
  c.shade = function (count) {
    var alpha = Math.min(1, (count || 0) / 10);
    return { 'background-color': 'rgba(198, 40, 40, ' + alpha + ')' };
  };
  c.polyline = function () {
    var points = c.data.points || [];
    var step = points.length > 1 ? 300 / (points.length - 1) : 0;
    return points.map(function (point, index) { return (index * step) + ',' + (100 - point.value); }).join(' ');
  };
  var refresh = $interval(function () { c.server.refresh(); }, Math.max(60, c.data.refreshSeconds || 300) * 1000);
  $scope.$on('$destroy', function () { $interval.cancel(refresh); });
};
";
    let option_schema = serde_json::json!([
        {"name": "title", "label": "Title", "type": "string", "default_value": widget.name},
    ]);
    let title = if widget.name.is_empty() { template.name } else { &widget.name };
    Ok(BTreeMap::from([
        ("name".into(), format!("ComplianceIQ: {}", widget.name)),
        ("template".into(), markup(template, title)),
        ("css".into(), CSS.into()),
        ("client_script".into(), client_script.into()),
        ("script".into(), script),
        ("option_schema".into(), option_schema.to_string()),
        (
            "description".into(),
            format!("{} (ComplianceIQ widget {}, version {})", template.description, widget.id, widget.version),
        ),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_written_into_the_code_is_escaped() {
        assert_eq!(js("a'b\"</script>&"), r#""a'b\"\u003c/script\u003e\u0026""#);
        assert_eq!(html("<b a=\"x\">'&"), "&lt;b a=&quot;x&quot;&gt;&#39;&amp;");
        let widget = Widget {
            id: "0190f0c4-0000-7000-8000-000000000001".into(),
            name: "</h3><script>alert(1)</script>".into(),
            r#type: WidgetType::Chart as i32,
            version: 3,
            config: Some(WidgetConfig {
                filters: [("instance_id".to_string(), "0190f0c4-0000-7000-8000-0000000000aa".to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let record = record(&widget, "https://ciq.example.com/").unwrap();
        assert!(!record["template"].contains("<script>"), "{}", record["template"]);
        assert!(record["script"].contains(r#"var base = "https://ciq.example.com";"#), "{}", record["script"]);
        assert!(record["script"].contains("/api/v1/insights/0190f0c4-0000-7000-8000-0000000000aa/trends"));
        assert!(record["script"].contains("data.version = 3;"));
        assert_eq!(record_key(&widget.id), "ciq_0190f0c4000070008000000000000001");
        let schema: serde_json::Value = serde_json::from_str(&record["option_schema"]).unwrap();
        assert_eq!(schema[0]["default_value"], widget.name.as_str());
    }

    #[test]
    fn every_type_has_a_template_and_templates_name_their_type() {
        for widget_type in
            [WidgetType::Scorecard, WidgetType::Chart, WidgetType::Table, WidgetType::Heatmap, WidgetType::InsightList]
        {
            assert!(for_type(widget_type).is_some(), "{widget_type:?}");
        }
        assert_eq!(built_in("risk-matrix").map(|t| t.widget_type), Some(WidgetType::Heatmap));
    }
}
