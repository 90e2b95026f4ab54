use crate::complianceiq::events::v1::event::Payload;

macro_rules! event_types {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// Every event type of the contract: what subscriptions name (so a typo does not
        /// compile, where a string would subscribe to nothing) and what ownership is
        /// declared for.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum EventType {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl EventType {
            /// All of them, in contract order.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            /// `organization.created`, `sync.completed`, ...: the name consumers route on
            /// and the last tokens of the NATS subject.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }

            /// The type named `name`.
            pub fn parse(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(EventType::$variant),)*
                    _ => None,
                }
            }
        }

        impl EventPayloadExt for Payload {
            fn kind(&self) -> EventType {
                match self {
                    $(Payload::$variant(_) => EventType::$variant,)*
                }
            }
        }
    };
}

event_types! {
    UserRegistered => "user.registered",
    UserEmailVerified => "user.email_verified",
    UserRoleAssigned => "user.role_assigned",
    UserRoleRemoved => "user.role_removed",
    UserAuthorizationChanged => "user.authorization_changed",
    OrganizationCreated => "organization.created",
    OrganizationUpdated => "organization.updated",
    OrganizationDeleted => "organization.deleted",
    MemberInvited => "member.invited",
    MemberJoined => "member.joined",
    MemberRemoved => "member.removed",
    SubscriptionChanged => "subscription.changed",
    InstanceCreated => "instance.created",
    InstanceUpdated => "instance.updated",
    InstanceDeleted => "instance.deleted",
    SyncStarted => "sync.started",
    SyncCompleted => "sync.completed",
    SyncFailed => "sync.failed",
    AnalysisStarted => "analysis.started",
    AnalysisCompleted => "analysis.completed",
    AnalysisFailed => "analysis.failed",
    InsightOpened => "insight.opened",
    WidgetDeployed => "widget.deployed",
    NotificationSent => "notification.sent",
    ModelTrained => "model.trained",
    WebhookDeliveryFailed => "webhook.delivery_failed",
    SecurityAlert => "security.alert",
    AuditRecorded => "audit.recorded",
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The event type of a payload. The match is exhaustive, so a new payload cannot ship
/// without its type.
pub trait EventPayloadExt {
    /// The payload's type.
    fn kind(&self) -> EventType;

    /// `organization.created`, `sync.completed`, ...
    fn event_type(&self) -> &'static str {
        self.kind().as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_payload_of_the_contract_has_its_type() {
        let pool = prost_reflect::DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
        let event = pool.get_message_by_name("complianceiq.events.v1.Event").unwrap();
        let payload = event.oneofs().find(|oneof| oneof.name() == "payload").unwrap();
        let fields: Vec<String> = payload.fields().map(|field| field.name().to_string()).collect();
        let named: Vec<String> = EventType::ALL.iter().map(|kind| kind.as_str().replace('.', "_")).collect();
        // `user.registered` is carried by the field `user_registered`, and so on.
        assert_eq!(fields, named);
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(*kind));
        }
    }
}
