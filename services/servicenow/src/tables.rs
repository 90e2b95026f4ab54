//! The ServiceNow GRC tables ComplianceIQ reads, with the fields it keeps and the references
//! between them. The simulator generates records of exactly these shapes; the sync fetches
//! exactly these fields.

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

/// Requirements: the policy statements controls implement.
pub const REQUIREMENTS: Table = Table {
    name: "sn_compliance_policy_statement",
    kind: "requirement",
    fields: &[
        plain("name"),
        plain("reference"),
        plain("category"),
        plain("description"),
        plain("active"),
        reference("policy", "sn_compliance_policy"),
    ],
};

/// Entities (profiles): what controls and risks apply to.
pub const ENTITIES: Table = Table {
    name: "sn_grc_profile",
    kind: "entity",
    fields: &[plain("name"), plain("profile_class"), plain("active"), reference("owner", "sys_user")],
};

/// Controls.
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
        reference("statement", "sn_compliance_policy_statement"),
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

/// Risks, with inherent and residual scores.
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

/// Indicators: how a control is monitored.
pub const INDICATORS: Table = Table {
    name: "sn_grc_indicator",
    kind: "indicator",
    fields: &[
        plain("number"),
        plain("name"),
        plain("type"),
        plain("frequency"),
        plain("active"),
        reference("item", "sn_compliance_control"),
        reference("owner", "sys_user"),
    ],
};

/// Indicator results: one collection of an indicator.
pub const INDICATOR_RESULTS: Table = Table {
    name: "sn_grc_indicator_result",
    kind: "indicator_result",
    fields: &[
        plain("collection_date"),
        plain("value"),
        plain("passed"),
        reference("indicator", "sn_grc_indicator"),
        reference("item", "sn_compliance_control"),
    ],
};

/// Issues raised on controls and risks.
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

/// Every synced table, referenced tables before the tables referencing them, except the
/// users: only those the GRC records reference are kept, so they come last.
pub const ALL: [Table; 10] =
    [POLICIES, REQUIREMENTS, ENTITIES, CONTROLS, RISK_STATEMENTS, RISKS, INDICATORS, INDICATOR_RESULTS, ISSUES, USERS];

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
