import datetime

from complianceiq.common.v1 import access_pb2 as _access_pb2
from complianceiq.common.v1 import common_pb2 as _common_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_EMAIL: _ClassVar[Channel]
    CHANNEL_SMS: _ClassVar[Channel]
    CHANNEL_IN_APP: _ClassVar[Channel]
    CHANNEL_WEBHOOK: _ClassVar[Channel]

class DeliveryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATE_UNSPECIFIED: _ClassVar[DeliveryState]
    DELIVERY_STATE_PENDING: _ClassVar[DeliveryState]
    DELIVERY_STATE_SENT: _ClassVar[DeliveryState]
    DELIVERY_STATE_FAILED: _ClassVar[DeliveryState]
    DELIVERY_STATE_SUPPRESSED: _ClassVar[DeliveryState]

class Cadence(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CADENCE_UNSPECIFIED: _ClassVar[Cadence]
    CADENCE_IMMEDIATE: _ClassVar[Cadence]
    CADENCE_DAILY_DIGEST: _ClassVar[Cadence]
CHANNEL_UNSPECIFIED: Channel
CHANNEL_EMAIL: Channel
CHANNEL_SMS: Channel
CHANNEL_IN_APP: Channel
CHANNEL_WEBHOOK: Channel
DELIVERY_STATE_UNSPECIFIED: DeliveryState
DELIVERY_STATE_PENDING: DeliveryState
DELIVERY_STATE_SENT: DeliveryState
DELIVERY_STATE_FAILED: DeliveryState
DELIVERY_STATE_SUPPRESSED: DeliveryState
CADENCE_UNSPECIFIED: Cadence
CADENCE_IMMEDIATE: Cadence
CADENCE_DAILY_DIGEST: Cadence

class ChannelDelivery(_message.Message):
    __slots__ = ("channel", "state", "error", "send_time")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    channel: Channel
    state: DeliveryState
    error: str
    send_time: _timestamp_pb2.Timestamp
    def __init__(self, channel: _Optional[_Union[Channel, str]] = ..., state: _Optional[_Union[DeliveryState, str]] = ..., error: _Optional[str] = ..., send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Notification(_message.Message):
    __slots__ = ("id", "organization_id", "user_id", "topic", "severity", "title", "body", "link_uri", "deliveries", "read", "read_time", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    LINK_URI_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    READ_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    user_id: str
    topic: str
    severity: _common_pb2.Severity
    title: str
    body: str
    link_uri: str
    deliveries: _containers.RepeatedCompositeFieldContainer[ChannelDelivery]
    read: bool
    read_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., user_id: _Optional[str] = ..., topic: _Optional[str] = ..., severity: _Optional[_Union[_common_pb2.Severity, str]] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., link_uri: _Optional[str] = ..., deliveries: _Optional[_Iterable[_Union[ChannelDelivery, _Mapping]]] = ..., read: _Optional[bool] = ..., read_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SendNotificationRequest(_message.Message):
    __slots__ = ("user_ids", "topic", "severity", "title", "body", "link_uri", "channels")
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    LINK_URI_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    topic: str
    severity: _common_pb2.Severity
    title: str
    body: str
    link_uri: str
    channels: _containers.RepeatedScalarFieldContainer[Channel]
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ..., topic: _Optional[str] = ..., severity: _Optional[_Union[_common_pb2.Severity, str]] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., link_uri: _Optional[str] = ..., channels: _Optional[_Iterable[_Union[Channel, str]]] = ...) -> None: ...

class SendNotificationResponse(_message.Message):
    __slots__ = ("notifications",)
    NOTIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    notifications: _containers.RepeatedCompositeFieldContainer[Notification]
    def __init__(self, notifications: _Optional[_Iterable[_Union[Notification, _Mapping]]] = ...) -> None: ...

class ListNotificationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "unread_only")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    UNREAD_ONLY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    unread_only: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., unread_only: _Optional[bool] = ...) -> None: ...

class ListNotificationsResponse(_message.Message):
    __slots__ = ("notifications", "next_page_token", "unread_count")
    NOTIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    UNREAD_COUNT_FIELD_NUMBER: _ClassVar[int]
    notifications: _containers.RepeatedCompositeFieldContainer[Notification]
    next_page_token: str
    unread_count: int
    def __init__(self, notifications: _Optional[_Iterable[_Union[Notification, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., unread_count: _Optional[int] = ...) -> None: ...

class GetNotificationRequest(_message.Message):
    __slots__ = ("notification_id",)
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    def __init__(self, notification_id: _Optional[str] = ...) -> None: ...

class MarkNotificationReadRequest(_message.Message):
    __slots__ = ("notification_id",)
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    def __init__(self, notification_id: _Optional[str] = ...) -> None: ...

class DeleteNotificationRequest(_message.Message):
    __slots__ = ("notification_id",)
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    def __init__(self, notification_id: _Optional[str] = ...) -> None: ...

class NotificationTemplate(_message.Message):
    __slots__ = ("name", "subject", "text", "html", "customized", "updated_by", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    HTML_FIELD_NUMBER: _ClassVar[int]
    CUSTOMIZED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    subject: str
    text: str
    html: str
    customized: bool
    updated_by: str
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., subject: _Optional[str] = ..., text: _Optional[str] = ..., html: _Optional[str] = ..., customized: _Optional[bool] = ..., updated_by: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetNotificationTemplateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UpdateNotificationTemplateRequest(_message.Message):
    __slots__ = ("name", "template")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    template: NotificationTemplate
    def __init__(self, name: _Optional[str] = ..., template: _Optional[_Union[NotificationTemplate, _Mapping]] = ...) -> None: ...

class DeleteNotificationTemplateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class StreamNotificationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StreamNotificationsResponse(_message.Message):
    __slots__ = ("notification", "unread_count")
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    UNREAD_COUNT_FIELD_NUMBER: _ClassVar[int]
    notification: Notification
    unread_count: int
    def __init__(self, notification: _Optional[_Union[Notification, _Mapping]] = ..., unread_count: _Optional[int] = ...) -> None: ...

class TopicPreference(_message.Message):
    __slots__ = ("topic", "channels", "min_severity", "cadence")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    MIN_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    CADENCE_FIELD_NUMBER: _ClassVar[int]
    topic: str
    channels: _containers.RepeatedScalarFieldContainer[Channel]
    min_severity: _common_pb2.Severity
    cadence: Cadence
    def __init__(self, topic: _Optional[str] = ..., channels: _Optional[_Iterable[_Union[Channel, str]]] = ..., min_severity: _Optional[_Union[_common_pb2.Severity, str]] = ..., cadence: _Optional[_Union[Cadence, str]] = ...) -> None: ...

class NotificationPreferences(_message.Message):
    __slots__ = ("user_id", "organization_id", "email", "phone_number", "topics", "quiet_hours_start", "quiet_hours_end", "update_time", "time_zone", "digest_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    QUIET_HOURS_START_FIELD_NUMBER: _ClassVar[int]
    QUIET_HOURS_END_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    organization_id: str
    email: str
    phone_number: str
    topics: _containers.RepeatedCompositeFieldContainer[TopicPreference]
    quiet_hours_start: str
    quiet_hours_end: str
    update_time: _timestamp_pb2.Timestamp
    time_zone: str
    digest_time: str
    def __init__(self, user_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., email: _Optional[str] = ..., phone_number: _Optional[str] = ..., topics: _Optional[_Iterable[_Union[TopicPreference, _Mapping]]] = ..., quiet_hours_start: _Optional[str] = ..., quiet_hours_end: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., time_zone: _Optional[str] = ..., digest_time: _Optional[str] = ...) -> None: ...

class GetNotificationPreferencesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateNotificationPreferencesRequest(_message.Message):
    __slots__ = ("preferences", "update_mask")
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    preferences: NotificationPreferences
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, preferences: _Optional[_Union[NotificationPreferences, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeliverReportRequest(_message.Message):
    __slots__ = ("organization_id", "report_run_id", "report_name", "recipient", "render_time", "attachment", "link_uri", "link_expire_time")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    REPORT_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REPORT_NAME_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    RENDER_TIME_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_FIELD_NUMBER: _ClassVar[int]
    LINK_URI_FIELD_NUMBER: _ClassVar[int]
    LINK_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    report_run_id: str
    report_name: str
    recipient: str
    render_time: _timestamp_pb2.Timestamp
    attachment: ReportAttachment
    link_uri: str
    link_expire_time: _timestamp_pb2.Timestamp
    def __init__(self, organization_id: _Optional[str] = ..., report_run_id: _Optional[str] = ..., report_name: _Optional[str] = ..., recipient: _Optional[str] = ..., render_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attachment: _Optional[_Union[ReportAttachment, _Mapping]] = ..., link_uri: _Optional[str] = ..., link_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReportAttachment(_message.Message):
    __slots__ = ("file_name", "content_type", "data")
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    content_type: str
    data: bytes
    def __init__(self, file_name: _Optional[str] = ..., content_type: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class DeliverReportResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
