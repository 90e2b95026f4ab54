use crate::complianceiq::events::v1::event::Payload;

/// The event type of a payload: the name consumers route on and the suffix of the NATS
/// subject. The match is exhaustive, so a new payload cannot ship without its name.
pub trait EventPayloadExt {
    /// `organization.created`, `sync.completed`, ...
    fn event_type(&self) -> &'static str;
}

impl EventPayloadExt for Payload {
    fn event_type(&self) -> &'static str {
        match self {
            Payload::UserRegistered(_) => "user.registered",
            Payload::UserEmailVerified(_) => "user.email_verified",
            Payload::UserRoleAssigned(_) => "user.role_assigned",
            Payload::UserRoleRemoved(_) => "user.role_removed",
            Payload::UserAuthorizationChanged(_) => "user.authorization_changed",
            Payload::OrganizationCreated(_) => "organization.created",
            Payload::OrganizationUpdated(_) => "organization.updated",
            Payload::OrganizationDeleted(_) => "organization.deleted",
            Payload::MemberInvited(_) => "member.invited",
            Payload::MemberJoined(_) => "member.joined",
            Payload::MemberRemoved(_) => "member.removed",
            Payload::SubscriptionChanged(_) => "subscription.changed",
            Payload::InstanceCreated(_) => "instance.created",
            Payload::InstanceUpdated(_) => "instance.updated",
            Payload::InstanceDeleted(_) => "instance.deleted",
            Payload::SyncStarted(_) => "sync.started",
            Payload::SyncCompleted(_) => "sync.completed",
            Payload::SyncFailed(_) => "sync.failed",
            Payload::AnalysisStarted(_) => "analysis.started",
            Payload::AnalysisCompleted(_) => "analysis.completed",
            Payload::AnalysisFailed(_) => "analysis.failed",
            Payload::WidgetDeployed(_) => "widget.deployed",
            Payload::NotificationSent(_) => "notification.sent",
            Payload::ModelTrained(_) => "model.trained",
            Payload::WebhookDeliveryFailed(_) => "webhook.delivery_failed",
            Payload::SecurityAlert(_) => "security.alert",
        }
    }
}
