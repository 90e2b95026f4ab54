//! Seeded GRC data with the shapes and proportions of a real IRM instance.

use std::collections::BTreeMap;

use super::{Record, Rng, State};
use crate::datetime;
use crate::tables::{self, Table};

const DAY: i64 = 86_400;
const FRAMEWORKS: [(&str, &str); 3] = [
    ("ISO/IEC 27001:2022", "A."),
    ("NIST Cybersecurity Framework 2.0", "PR."),
    ("SOC 2 Trust Services Criteria", "CC"),
];
const TOPICS: [&str; 12] = [
    "Access control",
    "Asset management",
    "Cryptography",
    "Logging and monitoring",
    "Change management",
    "Incident response",
    "Supplier relationships",
    "Business continuity",
    "Vulnerability management",
    "Data protection",
    "Human resources security",
    "Physical security",
];
const FIRST_NAMES: [&str; 10] =
    ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"];
const LAST_NAMES: [&str; 10] =
    ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Berners-Lee"];

/// The reference columns of the simulated instance and the tables they point to: its own
/// copy of the schema, independent of what the sync asks for (`crate::tables`), so that a
/// column the sync names wrongly comes back missing, as it would from a real instance.
const REFERENCE_COLUMNS: [(&str, &str, &str); 17] = [
    ("sn_compliance_policy", "owner", "sys_user"),
    ("sn_compliance_policy_statement", "document", "sn_compliance_policy"),
    ("sn_grc_profile", "owned_by", "sys_user"),
    ("sn_compliance_control", "content", "sn_compliance_policy_statement"),
    ("sn_compliance_control", "profile", "sn_grc_profile"),
    ("sn_compliance_control", "owner", "sys_user"),
    ("sn_risk_risk", "statement", "sn_risk_definition"),
    ("sn_risk_risk", "profile", "sn_grc_profile"),
    ("sn_risk_risk", "owner", "sys_user"),
    ("sn_risk_m2m_risk_control", "sn_risk_risk", "sn_risk_risk"),
    ("sn_risk_m2m_risk_control", "sn_compliance_control", "sn_compliance_control"),
    ("sn_grc_indicator", "item", "sn_compliance_control"),
    ("sn_grc_indicator", "owner", "sys_user"),
    ("sn_grc_indicator_result", "indicator", "sn_grc_indicator"),
    ("sn_grc_issue", "item", "sn_compliance_control"),
    ("sn_grc_issue", "profile", "sn_grc_profile"),
    ("sn_grc_issue", "assigned_to", "sys_user"),
];

/// The table a reference column of the simulated instance points to.
pub(crate) fn referenced_table(table: &str, column: &str) -> Option<&'static str> {
    REFERENCE_COLUMNS.iter().find(|(t, c, _)| *t == table && *c == column).map(|(_, _, target)| *target)
}

fn ids(state: &State, table: Table) -> Vec<String> {
    state.tables.get(table.name).map(|records| records.keys().cloned().collect()).unwrap_or_default()
}

fn any(rng: &mut Rng, ids: &[String]) -> String {
    if ids.is_empty() { String::new() } else { ids[rng.below(ids.len())].clone() }
}

/// Inserts a record with fresh system fields; its sys_id.
fn insert(state: &mut State, table: Table, created: i64, updated: i64, fields: Vec<(&'static str, String)>) -> String {
    let id = state.rng.sys_id();
    let mut record: Record = fields.into_iter().collect();
    record.insert("sys_id", id.clone());
    record.insert("sys_created_on", datetime::format(created));
    record.insert("sys_updated_on", datetime::format(updated.max(created)));
    record.insert("sys_mod_count", if updated > created { "1" } else { "0" }.into());
    state.tables.entry(table.name).or_default().insert(id.clone(), record);
    id
}

fn next_number(state: &mut State, prefix: &str) -> String {
    state.sequence += 1;
    format!("{prefix}{:07}", 1000 + state.sequence)
}

/// A moment in the calendar month `months_ago` months before `now`'s.
fn in_month(rng: &mut Rng, now: i64, months_ago: i64) -> i64 {
    let today = datetime::format(now);
    let (year, month): (i64, i64) = (today[0..4].parse().unwrap_or(2026), today[5..7].parse().unwrap_or(1));
    let index = year * 12 + (month - 1) - months_ago;
    let (day, hour) = (1 + rng.below(28), rng.below(24));
    datetime::parse(&format!("{:04}-{:02}-{day:02} {hour:02}:00:00", index / 12, index % 12 + 1))
        .unwrap_or(now - months_ago * 30 * DAY)
}

/// A moment in the past year, and a later one (its last update) no later than `now`.
fn history(rng: &mut Rng, now: i64) -> (i64, i64) {
    let created = now - 365 * DAY - rng.below(200) as i64 * DAY + rng.below(DAY as usize) as i64;
    let updated = created + rng.below((now - created).max(1) as usize) as i64;
    (created, updated.min(now - 60))
}

/// The whole instance.
pub(crate) fn generate(seed: u64, controls: usize, now: i64) -> State {
    let mut state = State { tables: BTreeMap::new(), rng: Rng(seed), sequence: 0, generation: 0 };
    for table in tables::ALL {
        state.tables.insert(table.name, BTreeMap::new());
    }
    let controls = controls.max(1);

    // GRC people, and as many colleagues no GRC record names (a sync must not keep them).
    let grc_people = (controls / 5).max(10);
    let mut grc_users = Vec::new();
    for index in 0..grc_people * 2 {
        let (created, updated) = history(&mut state.rng, now);
        let (first, last) = (FIRST_NAMES[index % 10], LAST_NAMES[(index / 10 + index) % 10]);
        let user_name = format!("{}.{}{}", first.to_lowercase(), last.to_lowercase(), index / 10);
        let title = if index < grc_people {
            ["Control Owner", "Risk Manager", "Compliance Analyst", "IT Manager"][index % 4]
        } else {
            ["Engineer", "Sales Representative", "Designer", "Accountant"][index % 4]
        };
        let id = insert(
            &mut state,
            tables::USERS,
            created,
            updated,
            vec![
                ("user_name", user_name.clone()),
                ("first_name", first.into()),
                ("last_name", last.into()),
                ("email", format!("{user_name}@example.com")),
                ("title", title.into()),
                ("active", "true".into()),
            ],
        );
        if index < grc_people {
            grc_users.push(id);
        }
    }
    let users = grc_users;

    let mut frameworks = Vec::new();
    for (name, _) in FRAMEWORKS {
        let (created, updated) = history(&mut state.rng, now);
        let owner = any(&mut state.rng, &users);
        frameworks.push(insert(
            &mut state,
            tables::POLICIES,
            created,
            updated,
            vec![
                ("name", name.into()),
                ("type", "framework".into()),
                ("category", "Information security".into()),
                ("state", "published".into()),
                ("description", format!("{name}, as adopted by the organization")),
                ("owner", owner),
            ],
        ));
    }
    for topic in TOPICS.iter().take(2 + controls / 40) {
        let (created, updated) = history(&mut state.rng, now);
        let owner = any(&mut state.rng, &users);
        let draft = state.rng.chance(0.15);
        insert(
            &mut state,
            tables::POLICIES,
            created,
            updated,
            vec![
                ("name", format!("{topic} policy")),
                ("type", "policy".into()),
                ("category", (*topic).into()),
                ("state", if draft { "draft" } else { "published" }.into()),
                ("description", format!("How the organization handles {}", topic.to_lowercase())),
                ("owner", owner),
            ],
        );
    }

    // Requirements: a fifth of them get no control (the gaps the analysis looks for).
    let requirement_count = (controls * 3 / 5).max(6);
    let mut with_controls = Vec::new();
    for index in 0..requirement_count {
        let framework = index % FRAMEWORKS.len();
        let (created, updated) = history(&mut state.rng, now);
        let topic = TOPICS[index % TOPICS.len()];
        let id = insert(
            &mut state,
            tables::REQUIREMENTS,
            created,
            updated,
            vec![
                ("name", format!("{topic}: requirement {}", index / FRAMEWORKS.len() + 1)),
                ("reference", format!("{}{}.{}", FRAMEWORKS[framework].1, index % 14 + 5, index / 14 + 1)),
                ("category", topic.into()),
                ("description", format!("The organization shall manage {}.", topic.to_lowercase())),
                ("active", "true".into()),
                ("document", frameworks[framework].clone()),
            ],
        );
        if index % 5 != 4 {
            with_controls.push(id);
        }
    }

    for index in 0..(controls / 10).max(3) {
        let (created, updated) = history(&mut state.rng, now);
        let owner = any(&mut state.rng, &users);
        let class = ["Business unit", "Application", "Vendor", "Data center"][index % 4];
        insert(
            &mut state,
            tables::ENTITIES,
            created,
            updated,
            vec![
                ("name", format!("{class} {}", index + 1)),
                ("profile_class", class.into()),
                ("active", "true".into()),
                ("owned_by", owner),
            ],
        );
    }
    let entities = ids(&state, tables::ENTITIES);

    let mut control_ids = Vec::new();
    for index in 0..controls {
        let (created, updated) = history(&mut state.rng, now);
        let statement = with_controls[index % with_controls.len()].clone();
        let fields = control_fields(&mut state, &statement, &entities, &users, index);
        control_ids.push(insert(&mut state, tables::CONTROLS, created, updated, fields));
    }

    for index in 0..(controls / 10).max(5) {
        let (created, updated) = history(&mut state.rng, now);
        let topic = TOPICS[index % TOPICS.len()];
        insert(
            &mut state,
            tables::RISK_STATEMENTS,
            created,
            updated,
            vec![
                ("name", format!("Failure of {}", topic.to_lowercase())),
                ("category", ["Operational", "Compliance", "Technology", "Third party"][index % 4].into()),
                ("description", format!("Risk that {} does not work as intended", topic.to_lowercase())),
                ("active", "true".into()),
            ],
        );
    }
    let statements = ids(&state, tables::RISK_STATEMENTS);
    for _ in 0..(controls / 2).max(5) {
        let (created, updated) = history(&mut state.rng, now);
        let fields = risk_fields(&mut state, &statements, &entities, &users);
        let risk = insert(&mut state, tables::RISKS, created, updated, fields);
        // Up to four mitigating controls; some risks have none (the analysis must cope).
        let mut linked: Vec<String> = (0..state.rng.below(5)).map(|_| any(&mut state.rng, &control_ids)).collect();
        linked.sort();
        linked.dedup();
        for control in linked {
            let (created, updated) = history(&mut state.rng, now);
            insert(&mut state, tables::RISK_CONTROLS, created, updated, risk_control_fields(&risk, &control));
        }
    }

    // Turning points, as real control histories have them, drawn from their own stream so the
    // rest of the instance stays what the seed made it.
    let mut turns = Rng(seed ^ 0x7475_726e_696e_6773);
    let mut turned: BTreeMap<String, Turn> = BTreeMap::new();

    // Indicators on most controls, with monthly results for the past year.
    for control in &control_ids {
        if !state.rng.chance(0.7) {
            continue;
        }
        let (created, updated) = history(&mut state.rng, now);
        let number = next_number(&mut state, "IND");
        let owner = any(&mut state.rng, &users);
        let kind = ["manual", "basic", "pa"][state.rng.below(3)];
        let indicator = insert(
            &mut state,
            tables::INDICATORS,
            created,
            updated,
            vec![
                ("number", number),
                ("name", "Control operating effectiveness".into()),
                ("type", kind.into()),
                ("collection_frequency", "monthly".into()),
                ("active", "true".into()),
                ("item", control.clone()),
                ("owner", owner),
            ],
        );
        let failing = state.tables[tables::CONTROLS.name][control].get("status").is_some_and(|s| s == "non_compliant");
        let turn = turned.entry(control.clone()).or_insert_with(|| Turn::draw(&mut turns, failing, now));
        for months_ago in 1..=12 {
            let collected = in_month(&mut state.rng, now, months_ago);
            let fields = result_fields(&mut state.rng, &indicator, collected, turn.failing_at(collected, failing));
            if fields.iter().any(|(name, value)| *name == "passed" && value == "false") {
                turn.failed(collected, failing);
            }
            insert(&mut state, tables::INDICATOR_RESULTS, collected, collected, fields);
        }
    }

    // Issues: mostly on failing controls; a control with a turning point has the issue that
    // tracked its failing spell.
    for control in &control_ids {
        let failing = state.tables[tables::CONTROLS.name][control].get("status").is_some_and(|s| s == "non_compliant");
        if failing || state.rng.chance(0.05) {
            let (mut created, mut updated) = history(&mut state.rng, now);
            let mut fields = issue_fields(&mut state, control, &entities, &users, created, now);
            if let Some(spell) = turned.remove(control).and_then(|turn| turn.spell(now)) {
                (created, updated) = spell.shape(&mut fields);
            }
            insert(&mut state, tables::ISSUES, created, updated, fields);
        }
    }
    // Remediated controls the loop above gave no issue get theirs (after everything else the
    // seed makes, so that stays as it was).
    for (control, turn) in turned {
        if let Some(spell) = turn.spell(now).filter(|spell| spell.closed.is_some()) {
            let mut fields = issue_fields(&mut state, &control, &entities, &users, spell.opened, now);
            let (created, updated) = spell.shape(&mut fields);
            insert(&mut state, tables::ISSUES, created, updated, fields);
        }
    }
    assess_residuals(&mut state, Rng(seed ^ 0x7265_7369_6475_616c));
    state
}

/// Residual scores as assessors record them: a risk's controls take off a share of its inherent
/// score by how they work (a compliant key control most, a failing control little), weighted
/// by their weighting, with the assessor's judgement as ±15% noise; the result is the nearest
/// likelihood × impact within the inherent ones. Risks without controls keep their drawn score.
/// From its own stream, after everything else, so the rest stays what the seed made it.
fn assess_residuals(state: &mut State, mut judgement: Rng) {
    let mut mitigation: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for link in state.tables[tables::RISK_CONTROLS.name].values() {
        let (Some(risk), Some(control)) = (link.get("sn_risk_risk"), link.get("sn_compliance_control")) else {
            continue;
        };
        let Some(control) = state.tables[tables::CONTROLS.name].get(control) else { continue };
        let field = |name: &str| control.get(name).map(String::as_str);
        let share = match (field("status"), field("key_control")) {
            (Some("non_compliant"), _) => 0.1,
            (_, Some("true")) => 0.8,
            _ => 0.6,
        };
        let weight: f64 = field("weighting").and_then(|w| w.parse().ok()).unwrap_or(1.0);
        let (weights, weighted) = mitigation.entry(risk.clone()).or_default();
        *weights += weight;
        *weighted += weight * share;
    }
    let risks = state.tables.get_mut(tables::RISKS.name).expect("every table exists");
    for (risk, (weights, weighted)) in mitigation {
        let Some(record) = risks.get_mut(&risk) else { continue };
        let inherent = |name: &str| record.get(name).and_then(|v| v.parse::<usize>().ok()).unwrap_or(3).max(1);
        let (likelihood, impact) = (inherent("inherent_likelihood"), inherent("inherent_impact"));
        let target = (likelihood * impact) as f64 * (1.0 - weighted / weights) * (0.85 + 0.3 * judgement.unit());
        let (l, i) = (1..=likelihood)
            .flat_map(|l| (1..=impact).map(move |i| (l, i)))
            .min_by(|a, b| ((a.0 * a.1) as f64 - target).abs().total_cmp(&((b.0 * b.1) as f64 - target).abs()))
            .unwrap_or((1, 1));
        record.insert("residual_likelihood", l.to_string());
        record.insert("residual_impact", i.to_string());
        record.insert("residual_score", (l * i).to_string());
    }
}

/// A control's turning point: a control now compliant that was failing until it was
/// remediated (`at`), or one now non-compliant that began failing at `at`. Most have none.
#[derive(Clone, Copy, Debug, Default)]
struct Turn {
    at: Option<i64>,
    /// The spell's first failed test.
    first_failure: Option<i64>,
}

/// A failing spell's issue: opened at its first failed test, closed at the remediation.
struct Spell {
    opened: i64,
    closed: Option<i64>,
}

impl Turn {
    /// A fifth of compliant controls were remediated, and two fifths of non-compliant ones
    /// began failing, between 20 and 260 days ago.
    fn draw(rng: &mut Rng, failing: bool, now: i64) -> Turn {
        let share = if failing { 0.4 } else { 0.2 };
        let turns = rng.chance(share);
        let at = now - (20 + rng.below(240)) as i64 * DAY;
        Turn { at: turns.then_some(at), first_failure: None }
    }

    /// Whether the control fails at the rates of a failing control at `time`.
    fn failing_at(&self, time: i64, failing_now: bool) -> bool {
        match self.at {
            None => failing_now,
            // Remediated at `at`: failing before. Began failing at `at`: failing since.
            Some(at) => (time >= at) == failing_now,
        }
    }

    fn failed(&mut self, time: i64, failing_now: bool) {
        if self.at.is_some() && self.failing_at(time, failing_now) {
            self.first_failure = Some(self.first_failure.map_or(time, |first| first.min(time)));
        }
    }

    /// The spell's issue, when the control turned and failed a test in the spell.
    fn spell(&self, now: i64) -> Option<Spell> {
        let (at, opened) = (self.at?, self.first_failure?);
        // A spell that ended (remediated) is the one before `at`.
        Some(if opened < at {
            Spell { opened, closed: Some(at.min(now - 60)) }
        } else {
            Spell { opened, closed: None }
        })
    }
}

impl Spell {
    /// Writes the spell's times and state into an issue's fields; the record's created and
    /// updated times.
    fn shape(&self, fields: &mut [(&'static str, String)]) -> (i64, i64) {
        for (name, value) in fields.iter_mut() {
            match *name {
                "opened_at" => *value = datetime::format(self.opened),
                "closed_at" => *value = self.closed.map(datetime::format).unwrap_or_default(),
                "state" => *value = if self.closed.is_some() { "3" } else { "1" }.into(),
                "due_date" => *value = datetime::format_date(self.opened + 30 * DAY),
                _ => {}
            }
        }
        (self.opened, self.closed.unwrap_or(self.opened))
    }
}

fn control_fields(
    state: &mut State,
    statement: &str,
    entities: &[String],
    users: &[String],
    index: usize,
) -> Vec<(&'static str, String)> {
    let rng = &mut state.rng;
    let status = match rng.below(20) {
        0..=12 => "compliant",
        13..=17 => "non_compliant",
        _ => "not_applicable",
    };
    let state_name = match rng.below(10) {
        0 => "draft",
        1 => "retired",
        _ => "monitor",
    };
    let (profile, owner) = (any(rng, entities), any(rng, users));
    let key_control = rng.chance(0.3);
    let weighting = 1 + rng.below(10);
    let frequency = ["monthly", "quarterly", "annually"][rng.below(3)];
    let topic = TOPICS[index % TOPICS.len()];
    vec![
        ("number", next_number(state, "CTRL")),
        ("name", format!("{topic} control {}", index + 1)),
        ("state", state_name.into()),
        ("status", status.into()),
        ("frequency", frequency.into()),
        ("key_control", key_control.to_string()),
        ("weighting", weighting.to_string()),
        ("content", statement.to_string()),
        ("profile", profile),
        ("owner", owner),
    ]
}

fn risk_fields(
    state: &mut State,
    statements: &[String],
    entities: &[String],
    users: &[String],
) -> Vec<(&'static str, String)> {
    let rng = &mut state.rng;
    let (likelihood, impact) = (1 + rng.below(5), 1 + rng.below(5));
    // Controls reduce a risk, never raise it.
    let residual_likelihood = 1 + rng.below(likelihood);
    let residual_impact = 1 + rng.below(impact);
    let statement = any(rng, statements);
    let (profile, owner) = (any(rng, entities), any(rng, users));
    let category = ["Operational", "Compliance", "Technology", "Third party"][rng.below(4)];
    let risk_state = ["draft", "assess", "respond", "monitor", "monitor", "monitor"][rng.below(6)];
    vec![
        ("number", next_number(state, "RISK")),
        ("name", format!("{category} risk {}", state.sequence)),
        ("state", risk_state.into()),
        ("category", category.into()),
        ("inherent_likelihood", likelihood.to_string()),
        ("inherent_impact", impact.to_string()),
        ("inherent_score", (likelihood * impact).to_string()),
        ("residual_likelihood", residual_likelihood.to_string()),
        ("residual_impact", residual_impact.to_string()),
        ("residual_score", (residual_likelihood * residual_impact).to_string()),
        ("statement", statement),
        ("profile", profile),
        ("owner", owner),
    ]
}

fn risk_control_fields(risk: &str, control: &str) -> Vec<(&'static str, String)> {
    vec![("sn_risk_risk", risk.to_string()), ("sn_compliance_control", control.to_string())]
}

fn result_fields(rng: &mut Rng, indicator: &str, collected: i64, failing: bool) -> Vec<(&'static str, String)> {
    let passed = !rng.chance(if failing { 0.6 } else { 0.08 });
    let value = if passed { 90 + rng.below(11) } else { 40 + rng.below(45) };
    vec![
        ("collection_date", datetime::format(collected)),
        ("value", value.to_string()),
        ("passed", passed.to_string()),
        ("indicator", indicator.to_string()),
    ]
}

fn issue_fields(
    state: &mut State,
    control: &str,
    entities: &[String],
    users: &[String],
    opened: i64,
    now: i64,
) -> Vec<(&'static str, String)> {
    let rng = &mut state.rng;
    let closed = rng.chance(0.4);
    // Closed complete or incomplete (3, 4), else review, new, analyze or respond.
    let issue_state = if closed { ["3", "3", "4"][rng.below(3)] } else { ["0", "1", "2", "5"][rng.below(4)] };
    let closed_at = if closed {
        datetime::format((opened + (5 + rng.below(60)) as i64 * DAY).min(now - 60))
    } else {
        String::new()
    };
    let priority = (1 + rng.below(4)).to_string();
    let (profile, assignee) = (any(rng, entities), any(rng, users));
    vec![
        ("number", next_number(state, "ISS")),
        ("short_description", "Control test failed".into()),
        ("state", issue_state.into()),
        ("priority", priority),
        ("opened_at", datetime::format(opened)),
        ("closed_at", closed_at),
        ("due_date", datetime::format_date(opened + 30 * DAY)),
        ("item", control.to_string()),
        ("profile", profile),
        ("assigned_to", assignee),
    ]
}

/// New values for some fields of a record, as people edit them (ServiceNow counts every
/// update in `sys_mod_count`, so the record always differs).
pub(crate) fn mutate(rng: &mut Rng, table: Table, record: &mut Record) {
    let count: u64 = record.get("sys_mod_count").and_then(|count| count.parse().ok()).unwrap_or(0);
    record.insert("sys_mod_count", (count + 1).to_string());
    match table.name {
        "sn_compliance_control" => {
            let status = ["compliant", "non_compliant", "not_applicable"][rng.below(3)];
            record.insert("status", status.into());
        }
        "sn_risk_risk" => {
            let likelihood: usize = record.get("inherent_likelihood").and_then(|v| v.parse().ok()).unwrap_or(3);
            let impact: usize = record.get("inherent_impact").and_then(|v| v.parse().ok()).unwrap_or(3);
            let (l, i) = (1 + rng.below(likelihood.max(1)), 1 + rng.below(impact.max(1)));
            record.insert("residual_likelihood", l.to_string());
            record.insert("residual_impact", i.to_string());
            record.insert("residual_score", (l * i).to_string());
        }
        "sn_grc_issue" => {
            record.insert("state", ["0", "1", "2", "5", "3", "4"][rng.below(6)].into());
        }
        _ => {
            record.insert("active", ["true", "false"][rng.below(2)].into());
        }
    }
}

/// A new record in `table`, referencing existing ones; its id.
pub(crate) fn create(state: &mut State, table: Table, stamp: &str) -> Option<(String, Record)> {
    let now = datetime::parse(stamp)?;
    let users = ids(state, tables::USERS);
    let entities = ids(state, tables::ENTITIES);
    let controls = ids(state, tables::CONTROLS);
    let fields = match table.name {
        "sn_compliance_control" => {
            let statements = ids(state, tables::REQUIREMENTS);
            let statement = any(&mut state.rng, &statements);
            let index = state.rng.below(1000);
            control_fields(state, &statement, &entities, &users, index)
        }
        "sn_grc_issue" => {
            let control = any(&mut state.rng, &controls);
            issue_fields(state, &control, &entities, &users, now, now)
        }
        "sn_grc_indicator_result" => {
            let indicators = ids(state, tables::INDICATORS);
            if indicators.is_empty() {
                return None;
            }
            let indicator = any(&mut state.rng, &indicators);
            result_fields(&mut state.rng, &indicator, now, false)
        }
        "sn_risk_m2m_risk_control" => {
            let risks = ids(state, tables::RISKS);
            if risks.is_empty() || controls.is_empty() {
                return None;
            }
            let (risk, control) = (any(&mut state.rng, &risks), any(&mut state.rng, &controls));
            risk_control_fields(&risk, &control)
        }
        _ => return None,
    };
    let id = insert(state, table, now, now, fields);
    let record = state.tables[table.name][&id].clone();
    Some((id, record))
}
