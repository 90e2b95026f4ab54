import datetime

from complianceiq.analysis.v1 import analysis_pb2 as _analysis_pb2
from complianceiq.audit.v1 import audit_pb2 as _audit_pb2
from complianceiq.insights.v1 import insights_pb2 as _insights_pb2
from complianceiq.instance.v1 import instance_pb2 as _instance_pb2
from complianceiq.organization.v1 import organization_pb2 as _organization_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Event(_message.Message):
    __slots__ = ("id", "type", "organization_id", "source", "occur_time", "actor_user_id", "request_id", "traceparent", "user_registered", "user_email_verified", "user_role_assigned", "user_role_removed", "user_authorization_changed", "organization_created", "organization_updated", "organization_deleted", "member_invited", "member_joined", "member_removed", "subscription_changed", "instance_created", "instance_updated", "instance_deleted", "sync_started", "sync_completed", "sync_failed", "analysis_started", "analysis_completed", "analysis_failed", "insight_opened", "widget_deployed", "notification_sent", "model_trained", "webhook_delivery_failed", "security_alert", "audit_recorded")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    OCCUR_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    USER_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    USER_EMAIL_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    USER_ROLE_ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    USER_ROLE_REMOVED_FIELD_NUMBER: _ClassVar[int]
    USER_AUTHORIZATION_CHANGED_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_CREATED_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_UPDATED_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_DELETED_FIELD_NUMBER: _ClassVar[int]
    MEMBER_INVITED_FIELD_NUMBER: _ClassVar[int]
    MEMBER_JOINED_FIELD_NUMBER: _ClassVar[int]
    MEMBER_REMOVED_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_CHANGED_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_CREATED_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_UPDATED_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_DELETED_FIELD_NUMBER: _ClassVar[int]
    SYNC_STARTED_FIELD_NUMBER: _ClassVar[int]
    SYNC_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    SYNC_FAILED_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_STARTED_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FAILED_FIELD_NUMBER: _ClassVar[int]
    INSIGHT_OPENED_FIELD_NUMBER: _ClassVar[int]
    WIDGET_DEPLOYED_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_SENT_FIELD_NUMBER: _ClassVar[int]
    MODEL_TRAINED_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_DELIVERY_FAILED_FIELD_NUMBER: _ClassVar[int]
    SECURITY_ALERT_FIELD_NUMBER: _ClassVar[int]
    AUDIT_RECORDED_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    organization_id: str
    source: str
    occur_time: _timestamp_pb2.Timestamp
    actor_user_id: str
    request_id: str
    traceparent: str
    user_registered: UserRegistered
    user_email_verified: UserEmailVerified
    user_role_assigned: UserRoleAssigned
    user_role_removed: UserRoleRemoved
    user_authorization_changed: UserAuthorizationChanged
    organization_created: OrganizationCreated
    organization_updated: OrganizationUpdated
    organization_deleted: OrganizationDeleted
    member_invited: MemberInvited
    member_joined: MemberJoined
    member_removed: MemberRemoved
    subscription_changed: SubscriptionChanged
    instance_created: InstanceCreated
    instance_updated: InstanceUpdated
    instance_deleted: InstanceDeleted
    sync_started: SyncStarted
    sync_completed: SyncCompleted
    sync_failed: SyncFailed
    analysis_started: AnalysisStarted
    analysis_completed: AnalysisCompleted
    analysis_failed: AnalysisFailed
    insight_opened: InsightOpened
    widget_deployed: WidgetDeployed
    notification_sent: NotificationSent
    model_trained: ModelTrained
    webhook_delivery_failed: WebhookDeliveryFailed
    security_alert: SecurityAlert
    audit_recorded: AuditRecorded
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., organization_id: _Optional[str] = ..., source: _Optional[str] = ..., occur_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor_user_id: _Optional[str] = ..., request_id: _Optional[str] = ..., traceparent: _Optional[str] = ..., user_registered: _Optional[_Union[UserRegistered, _Mapping]] = ..., user_email_verified: _Optional[_Union[UserEmailVerified, _Mapping]] = ..., user_role_assigned: _Optional[_Union[UserRoleAssigned, _Mapping]] = ..., user_role_removed: _Optional[_Union[UserRoleRemoved, _Mapping]] = ..., user_authorization_changed: _Optional[_Union[UserAuthorizationChanged, _Mapping]] = ..., organization_created: _Optional[_Union[OrganizationCreated, _Mapping]] = ..., organization_updated: _Optional[_Union[OrganizationUpdated, _Mapping]] = ..., organization_deleted: _Optional[_Union[OrganizationDeleted, _Mapping]] = ..., member_invited: _Optional[_Union[MemberInvited, _Mapping]] = ..., member_joined: _Optional[_Union[MemberJoined, _Mapping]] = ..., member_removed: _Optional[_Union[MemberRemoved, _Mapping]] = ..., subscription_changed: _Optional[_Union[SubscriptionChanged, _Mapping]] = ..., instance_created: _Optional[_Union[InstanceCreated, _Mapping]] = ..., instance_updated: _Optional[_Union[InstanceUpdated, _Mapping]] = ..., instance_deleted: _Optional[_Union[InstanceDeleted, _Mapping]] = ..., sync_started: _Optional[_Union[SyncStarted, _Mapping]] = ..., sync_completed: _Optional[_Union[SyncCompleted, _Mapping]] = ..., sync_failed: _Optional[_Union[SyncFailed, _Mapping]] = ..., analysis_started: _Optional[_Union[AnalysisStarted, _Mapping]] = ..., analysis_completed: _Optional[_Union[AnalysisCompleted, _Mapping]] = ..., analysis_failed: _Optional[_Union[AnalysisFailed, _Mapping]] = ..., insight_opened: _Optional[_Union[InsightOpened, _Mapping]] = ..., widget_deployed: _Optional[_Union[WidgetDeployed, _Mapping]] = ..., notification_sent: _Optional[_Union[NotificationSent, _Mapping]] = ..., model_trained: _Optional[_Union[ModelTrained, _Mapping]] = ..., webhook_delivery_failed: _Optional[_Union[WebhookDeliveryFailed, _Mapping]] = ..., security_alert: _Optional[_Union[SecurityAlert, _Mapping]] = ..., audit_recorded: _Optional[_Union[AuditRecorded, _Mapping]] = ...) -> None: ...

class UserRegistered(_message.Message):
    __slots__ = ("user_id", "email", "full_name")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    full_name: str
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., full_name: _Optional[str] = ...) -> None: ...

class UserEmailVerified(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class UserRoleAssigned(_message.Message):
    __slots__ = ("user_id", "role_id", "assigned_by")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_ID_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_BY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    role_id: str
    assigned_by: str
    def __init__(self, user_id: _Optional[str] = ..., role_id: _Optional[str] = ..., assigned_by: _Optional[str] = ...) -> None: ...

class UserRoleRemoved(_message.Message):
    __slots__ = ("user_id", "role_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    role_id: str
    def __init__(self, user_id: _Optional[str] = ..., role_id: _Optional[str] = ...) -> None: ...

class OrganizationCreated(_message.Message):
    __slots__ = ("organization", "creator_user_id", "creator_email")
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    CREATOR_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATOR_EMAIL_FIELD_NUMBER: _ClassVar[int]
    organization: _organization_pb2.Organization
    creator_user_id: str
    creator_email: str
    def __init__(self, organization: _Optional[_Union[_organization_pb2.Organization, _Mapping]] = ..., creator_user_id: _Optional[str] = ..., creator_email: _Optional[str] = ...) -> None: ...

class OrganizationUpdated(_message.Message):
    __slots__ = ("organization", "changed_fields")
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    organization: _organization_pb2.Organization
    changed_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, organization: _Optional[_Union[_organization_pb2.Organization, _Mapping]] = ..., changed_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class OrganizationDeleted(_message.Message):
    __slots__ = ("organization_id", "purge_time")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    PURGE_TIME_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    purge_time: _timestamp_pb2.Timestamp
    def __init__(self, organization_id: _Optional[str] = ..., purge_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MemberInvited(_message.Message):
    __slots__ = ("email", "role_ids", "invited_by", "member_id")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ROLE_IDS_FIELD_NUMBER: _ClassVar[int]
    INVITED_BY_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    email: str
    role_ids: _containers.RepeatedScalarFieldContainer[str]
    invited_by: str
    member_id: str
    def __init__(self, email: _Optional[str] = ..., role_ids: _Optional[_Iterable[str]] = ..., invited_by: _Optional[str] = ..., member_id: _Optional[str] = ...) -> None: ...

class MemberJoined(_message.Message):
    __slots__ = ("user_id", "role_ids", "member_id", "email")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_IDS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    role_ids: _containers.RepeatedScalarFieldContainer[str]
    member_id: str
    email: str
    def __init__(self, user_id: _Optional[str] = ..., role_ids: _Optional[_Iterable[str]] = ..., member_id: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class MemberRemoved(_message.Message):
    __slots__ = ("user_id", "member_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    member_id: str
    def __init__(self, user_id: _Optional[str] = ..., member_id: _Optional[str] = ...) -> None: ...

class UserAuthorizationChanged(_message.Message):
    __slots__ = ("user_id", "email", "roles", "permissions", "active", "version", "time_zone")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    permissions: _containers.RepeatedScalarFieldContainer[str]
    active: bool
    version: int
    time_zone: str
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., permissions: _Optional[_Iterable[str]] = ..., active: _Optional[bool] = ..., version: _Optional[int] = ..., time_zone: _Optional[str] = ...) -> None: ...

class SubscriptionChanged(_message.Message):
    __slots__ = ("subscription", "previous_plan")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_PLAN_FIELD_NUMBER: _ClassVar[int]
    subscription: _organization_pb2.Subscription
    previous_plan: _organization_pb2.Plan
    def __init__(self, subscription: _Optional[_Union[_organization_pb2.Subscription, _Mapping]] = ..., previous_plan: _Optional[_Union[_organization_pb2.Plan, str]] = ...) -> None: ...

class InstanceCreated(_message.Message):
    __slots__ = ("instance",)
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    instance: _instance_pb2.Instance
    def __init__(self, instance: _Optional[_Union[_instance_pb2.Instance, _Mapping]] = ...) -> None: ...

class InstanceUpdated(_message.Message):
    __slots__ = ("instance", "changed_fields")
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    instance: _instance_pb2.Instance
    changed_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, instance: _Optional[_Union[_instance_pb2.Instance, _Mapping]] = ..., changed_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class InstanceDeleted(_message.Message):
    __slots__ = ("instance_id",)
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    def __init__(self, instance_id: _Optional[str] = ...) -> None: ...

class SyncStarted(_message.Message):
    __slots__ = ("sync_run",)
    SYNC_RUN_FIELD_NUMBER: _ClassVar[int]
    sync_run: _instance_pb2.SyncRun
    def __init__(self, sync_run: _Optional[_Union[_instance_pb2.SyncRun, _Mapping]] = ...) -> None: ...

class SyncCompleted(_message.Message):
    __slots__ = ("sync_run",)
    SYNC_RUN_FIELD_NUMBER: _ClassVar[int]
    sync_run: _instance_pb2.SyncRun
    def __init__(self, sync_run: _Optional[_Union[_instance_pb2.SyncRun, _Mapping]] = ...) -> None: ...

class SyncFailed(_message.Message):
    __slots__ = ("sync_run",)
    SYNC_RUN_FIELD_NUMBER: _ClassVar[int]
    sync_run: _instance_pb2.SyncRun
    def __init__(self, sync_run: _Optional[_Union[_instance_pb2.SyncRun, _Mapping]] = ...) -> None: ...

class AnalysisStarted(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _analysis_pb2.AnalysisJob
    def __init__(self, job: _Optional[_Union[_analysis_pb2.AnalysisJob, _Mapping]] = ...) -> None: ...

class AnalysisCompleted(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _analysis_pb2.AnalysisJob
    def __init__(self, job: _Optional[_Union[_analysis_pb2.AnalysisJob, _Mapping]] = ...) -> None: ...

class AnalysisFailed(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _analysis_pb2.AnalysisJob
    def __init__(self, job: _Optional[_Union[_analysis_pb2.AnalysisJob, _Mapping]] = ...) -> None: ...

class WidgetDeployed(_message.Message):
    __slots__ = ("widget_id", "widget_version", "instance_id", "servicenow_sys_id")
    WIDGET_ID_FIELD_NUMBER: _ClassVar[int]
    WIDGET_VERSION_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    SERVICENOW_SYS_ID_FIELD_NUMBER: _ClassVar[int]
    widget_id: str
    widget_version: int
    instance_id: str
    servicenow_sys_id: str
    def __init__(self, widget_id: _Optional[str] = ..., widget_version: _Optional[int] = ..., instance_id: _Optional[str] = ..., servicenow_sys_id: _Optional[str] = ...) -> None: ...

class NotificationSent(_message.Message):
    __slots__ = ("notification_id", "user_id", "topic", "channels", "title", "body", "link_uri", "severity")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    LINK_URI_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    user_id: str
    topic: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    title: str
    body: str
    link_uri: str
    severity: str
    def __init__(self, notification_id: _Optional[str] = ..., user_id: _Optional[str] = ..., topic: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., link_uri: _Optional[str] = ..., severity: _Optional[str] = ...) -> None: ...

class ModelTrained(_message.Message):
    __slots__ = ("model_id", "name", "version", "metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    name: str
    version: int
    metrics: _containers.ScalarMap[str, float]
    def __init__(self, model_id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ...) -> None: ...

class WebhookDeliveryFailed(_message.Message):
    __slots__ = ("webhook_id", "delivery_id", "event_id", "error", "webhook_disabled", "url")
    WEBHOOK_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_DISABLED_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    webhook_id: str
    delivery_id: str
    event_id: str
    error: str
    webhook_disabled: bool
    url: str
    def __init__(self, webhook_id: _Optional[str] = ..., delivery_id: _Optional[str] = ..., event_id: _Optional[str] = ..., error: _Optional[str] = ..., webhook_disabled: _Optional[bool] = ..., url: _Optional[str] = ...) -> None: ...

class SecurityAlert(_message.Message):
    __slots__ = ("kind", "severity", "user_id", "ip_address", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    kind: str
    severity: str
    user_id: str
    ip_address: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, kind: _Optional[str] = ..., severity: _Optional[str] = ..., user_id: _Optional[str] = ..., ip_address: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AuditRecorded(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: _audit_pb2.AuditLog
    def __init__(self, entry: _Optional[_Union[_audit_pb2.AuditLog, _Mapping]] = ...) -> None: ...

class InsightOpened(_message.Message):
    __slots__ = ("insight",)
    INSIGHT_FIELD_NUMBER: _ClassVar[int]
    insight: _insights_pb2.Insight
    def __init__(self, insight: _Optional[_Union[_insights_pb2.Insight, _Mapping]] = ...) -> None: ...
