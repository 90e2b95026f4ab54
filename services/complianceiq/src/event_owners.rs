//! Which module owns each event type: the only one that may publish it. Consumers refuse an
//! event from any other publisher (a compromised or buggy module cannot, say, publish
//! `user.authorization_changed` to make someone an admin), and `complianceiq manifests`
//! renders the NATS publish permissions from the same table, so broker and code agree.
//! The match is exhaustive: a new event type does not compile without its owner.

use complianceiq_kit::subscription::EVERY_MODULE;
use complianceiq_proto::EventType;

/// The module that owns `event`.
pub fn event_owner(event: EventType) -> &'static str {
    use EventType::*;
    match event {
        // Accounts live in auth; the user service keeps profiles and roles.
        UserRegistered | UserEmailVerified | SecurityAlert => "auth",
        UserRoleAssigned | UserRoleRemoved | UserAuthorizationChanged => "user",
        OrganizationCreated | OrganizationUpdated | OrganizationDeleted | MemberInvited | MemberJoined
        | MemberRemoved | SubscriptionChanged => "organization",
        InstanceCreated | InstanceUpdated | InstanceDeleted | SyncStarted | SyncCompleted | SyncFailed => "instance",
        AnalysisStarted | AnalysisCompleted | AnalysisFailed => "analysis",
        InsightOpened => "insights",
        WidgetDeployed => "widget",
        NotificationSent => "notification",
        ModelTrained => "ml",
        WebhookDeliveryFailed => "webhook",
        // Every module records the mutating calls it serves; the audit service accepts an
        // entry only for an RPC of the publisher's own services.
        AuditRecorded => EVERY_MODULE,
    }
}

/// The event types `module` may publish.
pub fn events_of(module: &str) -> Vec<EventType> {
    // Modules with an outbox (a database), not the edge.
    let is_module = crate::modules().iter().any(|declared| declared.name.0 == module && declared.database.is_some());
    EventType::ALL
        .iter()
        .copied()
        .filter(|event| event_owner(*event) == module || (is_module && event_owner(*event) == EVERY_MODULE))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_owner_is_a_module() {
        let modules: Vec<&str> = crate::modules().iter().map(|module| module.name.0).collect();
        for event in EventType::ALL {
            let owner = event_owner(*event);
            assert!(owner == EVERY_MODULE || modules.contains(&owner), "{event} is owned by no module");
        }
        assert!(events_of("gateway").is_empty(), "the edge publishes nothing");
    }
}
