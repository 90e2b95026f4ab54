//! The ServiceNow GRC tables ComplianceIQ reads, with the fields it keeps and the references
//! between them; the sync fetches exactly these fields.
//!
//! The Table API silently drops a column it does not know from `sysparm_fields`, so a wrong
//! name here reads as an empty value, never as an error. Each name is checked against
//! ServiceNow's documentation (the product docs' form references and the dictionary names
//! they imply) and noted where it is not obvious; the simulator holds its own copy of the
//! instance's columns (`sim::generate`), so a wrong name here fails the sync tests.

/// One field of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Column name, e.g. `statement`.
    pub name: &'static str,
    /// The table a reference field points to.
    pub references: Option<&'static str>,
}

const fn plain(name: &'static str) -> Field {
    Field { name, references: None }
}

const fn reference(name: &'static str, table: &'static str) -> Field {
    Field { name, references: Some(table) }
}

/// A table ComplianceIQ syncs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    /// ServiceNow table name.
    pub name: &'static str,
    /// What ComplianceIQ calls its records.
    pub kind: &'static str,
    /// Fields besides the system fields ([`SYSTEM_FIELDS`]).
    pub fields: &'static [Field],
}

impl Table {
    /// The `sysparm_fields` value: every field, system fields first.
    pub fn field_list(&self) -> String {
        SYSTEM_FIELDS.iter().copied().chain(self.fields.iter().map(|field| field.name)).collect::<Vec<_>>().join(",")
    }

    /// The reference fields.
    pub fn references(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.fields.iter().filter_map(|field| field.references.map(|table| (field.name, table)))
    }
}

/// Fields every ServiceNow record has (`sys_mod_count` grows with every update).
pub const SYSTEM_FIELDS: [&str; 4] = ["sys_id", "sys_created_on", "sys_updated_on", "sys_mod_count"];

/// Users referenced by GRC records (owners, assignees).
pub const USERS: Table = Table {
    name: "sys_user",
    kind: "user",
    fields: &[
        plain("user_name"),
        plain("first_name"),
        plain("last_name"),
        plain("email"),
        plain("title"),
        plain("active"),
    ],
};

/// Policies and frameworks (`type` is `framework`, `policy` or `standard`).
pub const POLICIES: Table = Table {
    name: "sn_compliance_policy",
    kind: "policy",
    fields: &[
        plain("name"),
        plain("type"),
        plain("category"),
        plain("state"),
        plain("description"),
        reference("owner", "sys_user"),
    ],
};

/// Requirements: the policy statements (control objectives) controls implement. The table has
/// no `number`; its policy is the `document` it inherits from `sn_grc_content` (the
/// workspace's "document field on the control objective").
pub const REQUIREMENTS: Table = Table {
    name: "sn_compliance_policy_statement",
    kind: "requirement",
    fields: &[
        plain("name"),
        plain("reference"),
        plain("category"),
        plain("description"),
        plain("active"),
        reference("document", "sn_compliance_policy"),
    ],
};

/// Entities (profiles): what controls and risks apply to. Their owner is `owned_by` (not
/// `owner`, as on the GRC items); `profile_class` is the sys_id of an `sn_grc_profile_class`.
pub const ENTITIES: Table = Table {
    name: "sn_grc_profile",
    kind: "entity",
    fields: &[plain("name"), plain("profile_class"), plain("active"), reference("owned_by", "sys_user")],
};

/// Controls. The control objective a control implements is `content`, inherited from
/// `sn_grc_item`; `state` is draft, attest, review, monitor or retired; `status` compliant,
/// non_compliant or not_applicable; `weighting` (1–10) is ServiceNow's weight of the control.
pub const CONTROLS: Table = Table {
    name: "sn_compliance_control",
    kind: "control",
    fields: &[
        plain("number"),
        plain("name"),
        plain("state"),
        plain("status"),
        plain("frequency"),
        plain("key_control"),
        plain("weighting"),
        reference("content", "sn_compliance_policy_statement"),
        reference("profile", "sn_grc_profile"),
        reference("owner", "sys_user"),
    ],
};

/// Risk statements.
pub const RISK_STATEMENTS: Table = Table {
    name: "sn_risk_definition",
    kind: "risk_statement",
    fields: &[plain("name"), plain("category"), plain("description"), plain("active")],
};

/// Risks, with inherent and residual scores. `statement` is the `sn_risk_definition` the risk
/// instantiates. Not yet verified: instances scoring with risk criteria hold `likelihood`,
/// `impact`, `score` and `residual_*` as references into `sn_risk_criteria`; the numeric
/// inherent and residual columns here are those of the quantitative form.
pub const RISKS: Table = Table {
    name: "sn_risk_risk",
    kind: "risk",
    fields: &[
        plain("number"),
        plain("name"),
        plain("state"),
        plain("category"),
        plain("inherent_likelihood"),
        plain("inherent_impact"),
        plain("inherent_score"),
        plain("residual_likelihood"),
        plain("residual_impact"),
        plain("residual_score"),
        reference("statement", "sn_risk_definition"),
        reference("profile", "sn_grc_profile"),
        reference("owner", "sys_user"),
    ],
};

/// Indicators: how a control is monitored. `item` is the control (or risk) measured; its
/// schedule is `collection_frequency`.
pub const INDICATORS: Table = Table {
    name: "sn_grc_indicator",
    kind: "indicator",
    fields: &[
        plain("number"),
        plain("name"),
        plain("type"),
        plain("collection_frequency"),
        plain("active"),
        reference("item", "sn_compliance_control"),
        reference("owner", "sys_user"),
    ],
};

/// Indicator results: one collection of an indicator. The control is the indicator's `item`.
pub const INDICATOR_RESULTS: Table = Table {
    name: "sn_grc_indicator_result",
    kind: "indicator_result",
    fields: &[plain("collection_date"), plain("value"), plain("passed"), reference("indicator", "sn_grc_indicator")],
};

/// Issues raised on controls and risks. `state` is numeric: 0 review, 1 new, 2 analyze,
/// 5 respond, 3 closed complete, 4 closed incomplete (cancelled).
pub const ISSUES: Table = Table {
    name: "sn_grc_issue",
    kind: "issue",
    fields: &[
        plain("number"),
        plain("short_description"),
        plain("state"),
        plain("priority"),
        plain("opened_at"),
        plain("closed_at"),
        plain("due_date"),
        reference("item", "sn_compliance_control"),
        reference("profile", "sn_grc_profile"),
        reference("assigned_to", "sys_user"),
    ],
};

/// Which controls mitigate which risks (many to many).
pub const RISK_CONTROLS: Table = Table {
    name: "sn_risk_m2m_risk_control",
    kind: "risk_control",
    fields: &[reference("sn_risk_risk", "sn_risk_risk"), reference("sn_compliance_control", "sn_compliance_control")],
};

/// Every synced table, referenced tables before the tables referencing them, except the
/// users: only those the GRC records reference are kept, so they come last.
pub const ALL: [Table; 11] = [
    POLICIES,
    REQUIREMENTS,
    ENTITIES,
    CONTROLS,
    RISK_STATEMENTS,
    RISKS,
    RISK_CONTROLS,
    INDICATORS,
    INDICATOR_RESULTS,
    ISSUES,
    USERS,
];

/// The table named `name`.
pub fn by_name(name: &str) -> Option<Table> {
    ALL.iter().copied().find(|table| table.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_point_to_tables_synced_earlier_and_users_come_last() {
        for (index, table) in ALL.iter().enumerate() {
            for (field, target) in table.references().filter(|(_, target)| *target != USERS.name) {
                let position = ALL.iter().position(|candidate| candidate.name == target);
                assert!(position.is_some_and(|p| p < index), "{}.{field} -> {target}", table.name);
            }
        }
        assert_eq!(ALL.last(), Some(&USERS));
        assert_eq!(CONTROLS.field_list().split(',').next(), Some("sys_id"));
        assert_eq!(by_name("sn_grc_issue"), Some(ISSUES));
    }
}
