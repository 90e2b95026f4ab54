import datetime

from complianceiq.common.v1 import access_pb2 as _access_pb2
from complianceiq.organization.v1 import organization_pb2 as _organization_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListOrganizationsRequest(_message.Message):
    __slots__ = ("query", "state", "page_size", "page_token", "reason")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    query: str
    state: _organization_pb2.OrganizationState
    page_size: int
    page_token: str
    reason: str
    def __init__(self, query: _Optional[str] = ..., state: _Optional[_Union[_organization_pb2.OrganizationState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class OrganizationSummary(_message.Message):
    __slots__ = ("id", "display_name", "slug", "state", "plan", "create_time", "update_time", "last_sync_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    SLUG_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_SYNC_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    display_name: str
    slug: str
    state: _organization_pb2.OrganizationState
    plan: _organization_pb2.Plan
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    last_sync_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., display_name: _Optional[str] = ..., slug: _Optional[str] = ..., state: _Optional[_Union[_organization_pb2.OrganizationState, str]] = ..., plan: _Optional[_Union[_organization_pb2.Plan, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_sync_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListOrganizationsResponse(_message.Message):
    __slots__ = ("organizations", "next_page_token")
    ORGANIZATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organizations: _containers.RepeatedCompositeFieldContainer[OrganizationSummary]
    next_page_token: str
    def __init__(self, organizations: _Optional[_Iterable[_Union[OrganizationSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetOrganizationHealthRequest(_message.Message):
    __slots__ = ("organization_id", "reason")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    reason: str
    def __init__(self, organization_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class OrganizationHealth(_message.Message):
    __slots__ = ("organization", "subscription", "usage", "active_members", "pending_invitations", "last_sync_time")
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    PENDING_INVITATIONS_FIELD_NUMBER: _ClassVar[int]
    LAST_SYNC_TIME_FIELD_NUMBER: _ClassVar[int]
    organization: _organization_pb2.Organization
    subscription: _organization_pb2.Subscription
    usage: _organization_pb2.Usage
    active_members: int
    pending_invitations: int
    last_sync_time: _timestamp_pb2.Timestamp
    def __init__(self, organization: _Optional[_Union[_organization_pb2.Organization, _Mapping]] = ..., subscription: _Optional[_Union[_organization_pb2.Subscription, _Mapping]] = ..., usage: _Optional[_Union[_organization_pb2.Usage, _Mapping]] = ..., active_members: _Optional[int] = ..., pending_invitations: _Optional[int] = ..., last_sync_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SuspendOrganizationRequest(_message.Message):
    __slots__ = ("organization_id", "reason")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    reason: str
    def __init__(self, organization_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RestoreOrganizationRequest(_message.Message):
    __slots__ = ("organization_id", "reason")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    reason: str
    def __init__(self, organization_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
