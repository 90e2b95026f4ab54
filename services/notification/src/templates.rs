//! Email templates (`minijinja`): the platform's, and the ones an organization keeps instead
//! (`notification_templates`, edited through Get/Update/DeleteNotificationTemplate). Each has
//! a subject, a text and an HTML part (values HTML-escaped there). An organization's template
//! runs sandboxed: no I/O, a fuel limit per render, and it is checked by rendering a sample
//! before it is kept; if it still fails on real data, the platform's renders instead, so no
//! mail is lost to a template.

use complianceiq_kit::error::{ApiError, FieldViolations};
use complianceiq_kit::mail::Mail;
use complianceiq_proto::complianceiq::notification::v1::{Notification, NotificationTemplate};
use minijinja::Environment;

/// The templates there are.
pub const NAMES: [&str; 3] = ["notification", "digest", "report"];
/// Work one render may do (minijinja's fuel: roughly instructions).
const FUEL: u64 = 100_000;
/// Longest part an organization may keep.
pub const MAX_SOURCE: usize = 20_000;
/// Longest rendered subject line.
const MAX_SUBJECT: usize = 200;

const SUBJECT: &str = "{{ title }}";
const DIGEST_SUBJECT: &str = "Your ComplianceIQ digest: {{ items|length }} notification{{ 's' if items|length != 1 }}";

const TEXT: &str = "{{ title }}

{{ body }}
{% if link %}
Open it: {{ link }}
{% endif %}
--
ComplianceIQ. You receive this because of your notification preferences: {{ preferences }}
";

const HTML: &str = r#"<!doctype html>
<html><body style="font-family: sans-serif; max-width: 40em">
<h2>{{ title }}</h2>
<p>{{ body }}</p>
{% if link %}<p><a href="{{ link }}">Open it in ComplianceIQ</a></p>{% endif %}
<hr><p style="color: #666; font-size: small">You receive this because of your
<a href="{{ preferences }}">notification preferences</a>.</p>
</body></html>
"#;

const DIGEST_TEXT: &str = "Your ComplianceIQ digest: {{ items|length }} notification{{ 's' if items|length != 1 }}
{% for item in items %}
- {{ item.title }}{% if item.body %}
  {{ item.body }}{% endif %}{% if item.link %}
  {{ item.link }}{% endif %}
{% endfor %}
--
ComplianceIQ. You receive this digest because of your notification preferences: {{ preferences }}
";

const DIGEST_HTML: &str = r#"<!doctype html>
<html><body style="font-family: sans-serif; max-width: 40em">
<h2>Your ComplianceIQ digest</h2>
<ul>
{% for item in items %}<li><p><strong>{% if item.link %}<a href="{{ item.link }}">{{ item.title }}</a>{% else %}{{ item.title }}{% endif %}</strong>{% if item.body %}<br>{{ item.body }}{% endif %}</p></li>
{% endfor %}</ul>
<hr><p style="color: #666; font-size: small">You receive this digest because of your
<a href="{{ preferences }}">notification preferences</a>.</p>
</body></html>
"#;

const REPORT_SUBJECT: &str = "{{ report }}: your ComplianceIQ report of {{ rendered }}";

const REPORT_TEXT: &str = "{{ report }}

Your ComplianceIQ report, rendered {{ rendered }}.
{% if link %}
Download it (the link expires {{ expires }}): {{ link }}
{% else %}
It is attached: {{ file }}.
{% endif %}
--
ComplianceIQ. You receive this because you are a recipient of this report.
";

const REPORT_HTML: &str = r#"<!doctype html>
<html><body style="font-family: sans-serif; max-width: 40em">
<h2>{{ report }}</h2>
<p>Your ComplianceIQ report, rendered {{ rendered }}.</p>
{% if link %}<p><a href="{{ link }}">Download it</a> (the link expires {{ expires }}).</p>{% else %}<p>It is attached: {{ file }}.</p>{% endif %}
<hr><p style="color: #666; font-size: small">You receive this because you are a recipient of this report.</p>
</body></html>
"#;

/// A template's parts under the names the environment knows (the extension picks HTML
/// escaping).
fn file_names(name: &str) -> Option<[&'static str; 3]> {
    match name {
        "notification" => Some(["notification.subject", "notification.txt", "notification.html"]),
        "digest" => Some(["digest.subject", "digest.txt", "digest.html"]),
        "report" => Some(["report.subject", "report.txt", "report.html"]),
        _ => None,
    }
}

/// The platform's sources of template `name`: subject, text, HTML.
fn platform_sources(name: &str) -> Option<[&'static str; 3]> {
    match name {
        "notification" => Some([SUBJECT, TEXT, HTML]),
        "digest" => Some([DIGEST_SUBJECT, DIGEST_TEXT, DIGEST_HTML]),
        "report" => Some([REPORT_SUBJECT, REPORT_TEXT, REPORT_HTML]),
        _ => None,
    }
}

/// The platform's template `name`.
pub fn platform(name: &str) -> Option<NotificationTemplate> {
    let [subject, text, html] = platform_sources(name)?;
    Some(NotificationTemplate {
        name: name.into(),
        subject: subject.into(),
        text: text.into(),
        html: html.into(),
        ..Default::default()
    })
}

/// An environment holding `template`'s parts, limited for running what a tenant wrote;
/// the part that does not parse, with why.
fn environment_of(template: &NotificationTemplate) -> Result<Environment<'_>, (&'static str, String)> {
    let names = file_names(&template.name).ok_or(("name", "not a template".to_string()))?;
    let mut environment = Environment::new();
    environment.set_fuel(Some(FUEL));
    for ((file, source), field) in
        names.into_iter().zip([&template.subject, &template.text, &template.html]).zip(["subject", "text", "html"])
    {
        environment.add_template(file, source).map_err(|error| (field, error.to_string()))?;
    }
    Ok(environment)
}

/// Renders `name`'s three parts from `environment` with `context` into a mail to `to`; the
/// part that failed, with why.
fn compose(
    environment: &Environment<'_>,
    name: &str,
    to: &str,
    context: &minijinja::Value,
) -> Result<Mail, (&'static str, String)> {
    let names = file_names(name).ok_or(("name", "not a template".to_string()))?;
    let render = |file: &str, field: &'static str| {
        environment
            .get_template(file)
            .and_then(|template| template.render(context))
            .map_err(|error| (field, error.to_string()))
    };
    let subject = render(names[0], "subject")?;
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    if subject.is_empty() || subject.chars().count() > MAX_SUBJECT {
        return Err((
            "subject",
            format!("the subject renders to {} characters; 1 to {MAX_SUBJECT}", subject.chars().count()),
        ));
    }
    Ok(Mail {
        to: to.into(),
        subject,
        body: render(names[1], "text")?,
        html: Some(render(names[2], "html")?),
        attachments: Vec::new(),
    })
}

/// What a report's mail says.
pub struct ReportMail<'a> {
    pub name: &'a str,
    /// When it was rendered (RFC 3339, UTC).
    pub rendered: &'a str,
    /// Its link when it is sent as one (else empty), and when that expires.
    pub link: &'a str,
    pub expires: &'a str,
    /// The attached file's name.
    pub file: &'a str,
}

/// The templates: the platform's parsed once; an organization's per mail.
pub struct Templates {
    environment: Environment<'static>,
    public_url: String,
}

impl Templates {
    pub fn new(public_url: &str) -> Self {
        let mut environment = Environment::new();
        for name in NAMES {
            let sources = platform_sources(name).expect("a platform template");
            for (file, source) in file_names(name).expect("named").into_iter().zip(sources) {
                environment.add_template(file, source).expect("the platform's templates parse");
            }
        }
        Self { environment, public_url: public_url.trim_end_matches('/').to_string() }
    }

    /// A notification's link: its path under the platform's public URL.
    pub fn link(&self, path: &str) -> String {
        if path.is_empty() { String::new() } else { format!("{}{path}", self.public_url) }
    }

    fn item(notification: &Notification) -> minijinja::Value {
        minijinja::context! {
            title => notification.title,
            body => notification.body,
            link => notification.link_uri,
            topic => notification.topic,
            severity => notification.severity().as_str_name().trim_start_matches("SEVERITY_"),
        }
    }

    /// The mail of a notification to `to`, in the organization's template if it has one.
    pub fn mail(
        &self,
        to: &str,
        notification: &Notification,
        custom: Option<&NotificationTemplate>,
    ) -> Result<Mail, ApiError> {
        let context = minijinja::context! {
            preferences => self.link("/api/v1/notifications/preferences"),
            ..Self::item(notification)
        };
        self.render("notification", to, &context, custom)
    }

    /// One mail to `to` gathering `notifications`, oldest first.
    pub fn digest(
        &self,
        to: &str,
        notifications: &[Notification],
        custom: Option<&NotificationTemplate>,
    ) -> Result<Mail, ApiError> {
        let items: Vec<minijinja::Value> = notifications.iter().map(Self::item).collect();
        let context = minijinja::context! {
            items => items,
            preferences => self.link("/api/v1/notifications/preferences"),
        };
        self.render("digest", to, &context, custom)
    }

    /// The mail carrying one rendering of a report: `link` (with its expiry) when it is sent
    /// as a link, else the file named `file` is attached by the caller.
    pub fn report(
        &self,
        to: &str,
        report: &ReportMail<'_>,
        custom: Option<&NotificationTemplate>,
    ) -> Result<Mail, ApiError> {
        let context = minijinja::context! {
            report => report.name,
            rendered => report.rendered,
            link => report.link,
            expires => report.expires,
            file => report.file,
        };
        self.render("report", to, &context, custom)
    }

    fn render(
        &self,
        name: &str,
        to: &str,
        context: &minijinja::Value,
        custom: Option<&NotificationTemplate>,
    ) -> Result<Mail, ApiError> {
        if let Some(custom) = custom {
            match environment_of(custom).and_then(|environment| compose(&environment, name, to, context)) {
                Ok(mail) => return Ok(mail),
                Err((part, error)) => tracing::warn!(
                    template = name,
                    part,
                    %error,
                    "the organization's email template failed; the platform's is used"
                ),
            }
        }
        compose(&self.environment, name, to, context)
            .map_err(|(part, error)| ApiError::internal(format!("rendering the platform's {name} {part}: {error}")))
    }

    /// Checks a template an organization wants to keep: a known name, parts of bounded size
    /// that parse and render a sample.
    pub fn check(&self, template: &NotificationTemplate, violations: &mut FieldViolations) {
        if file_names(&template.name).is_none() {
            violations.add(
                "template.name",
                "UNKNOWN_TEMPLATE",
                format!("template.name must be one of {}", NAMES.join(", ")),
            );
            return;
        }
        for (field, source) in [("subject", &template.subject), ("text", &template.text), ("html", &template.html)] {
            if source.trim().is_empty() {
                violations.required(&format!("template.{field}"));
            } else if source.chars().count() > MAX_SOURCE {
                violations.add(&format!("template.{field}"), "TOO_LONG", format!("at most {MAX_SOURCE} characters"));
            }
        }
        if !violations.is_empty() {
            return;
        }
        let sample = Notification {
            title: "Sample: a control turned ineffective".into(),
            body: "Access review CTRL0042 failed 3 of its last 4 tests.".into(),
            link_uri: self.link("/api/v1/insights/sample"),
            topic: "insight.opened".into(),
            ..Default::default()
        };
        let context = match template.name.as_str() {
            "report" => minijinja::context! {
                report => "Quarterly posture", rendered => "2026-01-01T06:00:00Z", link => "", expires => "",
                file => "report-quarterly-posture.pdf",
            },
            "digest" => minijinja::context! {
                items => vec![Self::item(&sample), Self::item(&sample)],
                preferences => self.link("/api/v1/notifications/preferences"),
            },
            _ => {
                minijinja::context! { preferences => self.link("/api/v1/notifications/preferences"), ..Self::item(&sample) }
            }
        };
        if let Err((part, error)) = environment_of(template)
            .and_then(|environment| compose(&environment, &template.name, "sample@example.com", &context))
        {
            violations.add(&format!("template.{part}"), "INVALID_TEMPLATE", error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_mail_carries_its_link_or_names_its_attachment() {
        let templates = Templates::new("https://ciq.example.com");
        let linked = ReportMail {
            name: "Board <pack>",
            rendered: "2026-12-07T05:00:00Z",
            link: "https://ciq.example.com/api/v1/dashboard/reports/runs/r1/download?signature=s",
            expires: "2026-12-14T05:00:00Z",
            file: "report-board-pack-2026-12-07.pdf",
        };
        let mail = templates.report("ciso@example.com", &linked, None).unwrap();
        assert_eq!(mail.subject, "Board <pack>: your ComplianceIQ report of 2026-12-07T05:00:00Z");
        assert!(
            mail.body.contains(&format!("(the link expires 2026-12-14T05:00:00Z): {}", linked.link)),
            "{}",
            mail.body
        );
        assert!(mail.html.unwrap().contains("Board &lt;pack&gt;"));
        let attached = templates.report("ciso@example.com", &ReportMail { link: "", ..linked }, None).unwrap();
        assert!(attached.body.contains("It is attached: report-board-pack-2026-12-07.pdf."), "{}", attached.body);
    }

    #[test]
    fn a_digest_lists_every_notification_in_both_parts() {
        let templates = Templates::new("https://ciq.example.com");
        let notifications = [
            Notification {
                title: "Analysis done".into(),
                link_uri: "https://ciq.example.com/a".into(),
                ..Default::default()
            },
            Notification { title: "Risks <reviewed>".into(), body: "3 understated".into(), ..Default::default() },
        ];
        let mail = templates.digest("ada@example.com", &notifications, None).unwrap();
        assert_eq!(mail.subject, "Your ComplianceIQ digest: 2 notifications");
        assert!(mail.body.contains("- Analysis done\n  https://ciq.example.com/a"), "{}", mail.body);
        assert!(mail.body.contains("- Risks <reviewed>\n  3 understated"), "{}", mail.body);
        let html = mail.html.unwrap();
        assert!(html.contains(r#"<a href="https:&#x2f;&#x2f;ciq.example.com&#x2f;a">Analysis done</a>"#), "{html}");
        assert!(html.contains("Risks &lt;reviewed&gt;"), "{html}");
    }

    #[test]
    fn mails_have_both_parts_and_escape_html() {
        let templates = Templates::new("https://ciq.example.com/");
        let notification = Notification {
            title: "Sync failed".into(),
            body: "<script>alert(1)</script> & more".into(),
            link_uri: templates.link("/api/v1/instances/i1"),
            ..Default::default()
        };
        let mail = templates.mail("a@example.com", &notification, None).unwrap();
        assert_eq!(mail.subject, "Sync failed");
        assert!(mail.body.contains("<script>alert(1)</script> & more"), "{}", mail.body);
        assert!(mail.body.contains("Open it: https://ciq.example.com/api/v1/instances/i1"));
        let html = mail.html.unwrap();
        assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; more"), "{html}");
        assert!(
            html.contains(r#"<a href="https:&#x2f;&#x2f;ciq.example.com&#x2f;api&#x2f;v1&#x2f;instances&#x2f;i1">"#),
            "{html}"
        );
    }

    fn custom(subject: &str, text: &str, html: &str) -> NotificationTemplate {
        NotificationTemplate {
            name: "notification".into(),
            subject: subject.into(),
            text: text.into(),
            html: html.into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_organizations_template_is_checked_before_it_is_kept_and_used_after() {
        let templates = Templates::new("https://ciq.example.com");
        let mut violations = FieldViolations::default();
        let acme = custom("[Acme] {{ title }}", "Acme: {{ title }} ({{ severity }})", "<p>{{ body }}</p>");
        templates.check(&acme, &mut violations);
        assert!(violations.is_empty(), "{violations:?}");
        let notification =
            Notification { title: "Sync failed".into(), body: "<b>401</b>".into(), severity: 4, ..Default::default() };
        let mail = templates.mail("a@example.com", &notification, Some(&acme)).unwrap();
        assert_eq!((mail.subject.as_str(), mail.body.as_str()), ("[Acme] Sync failed", "Acme: Sync failed (HIGH)"));
        assert_eq!(mail.html.unwrap(), "<p>&lt;b&gt;401&lt;&#x2f;b&gt;</p>", "still escaped");

        for (bad, field) in [
            (custom("{{ title }", "x", "x"), "template.subject"),
            (custom("ok", "{% if %}", "x"), "template.text"),
            (
                custom("ok", "x", "{% for i in range(100000) %}{% for j in range(100000) %}.{% endfor %}{% endfor %}"),
                "template.html",
            ),
            (custom("{{ body * 1000 }}", "x", "x"), "template.subject"),
            (custom(" ", "x", "x"), "template.subject"),
        ] {
            let mut violations = FieldViolations::default();
            templates.check(&bad, &mut violations);
            let error = violations.check().unwrap_err();
            assert_eq!(error.field_violations()[0].field, field, "{bad:?}: {error:?}");
        }
    }

    #[test]
    fn a_template_that_fails_on_real_data_gives_way_to_the_platforms() {
        let templates = Templates::new("https://ciq.example.com");
        let fragile = custom("{{ title }}", "{{ body|int + 1 }}", "x");
        let notification =
            Notification { title: "Sync failed".into(), body: "not a number".into(), ..Default::default() };
        let mail = templates.mail("a@example.com", &notification, Some(&fragile)).unwrap();
        assert!(mail.body.contains("not a number") && mail.body.contains("notification preferences"), "{}", mail.body);
    }
}
