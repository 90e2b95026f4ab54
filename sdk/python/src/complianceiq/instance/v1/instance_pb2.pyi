import datetime

from complianceiq.common.v1 import access_pb2 as _access_pb2
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

class AuthType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTH_TYPE_UNSPECIFIED: _ClassVar[AuthType]
    AUTH_TYPE_BASIC: _ClassVar[AuthType]
    AUTH_TYPE_OAUTH2_CLIENT_CREDENTIALS: _ClassVar[AuthType]
    AUTH_TYPE_OAUTH2_PASSWORD: _ClassVar[AuthType]

class InstanceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INSTANCE_STATE_UNSPECIFIED: _ClassVar[InstanceState]
    INSTANCE_STATE_ACTIVE: _ClassVar[InstanceState]
    INSTANCE_STATE_DISABLED: _ClassVar[InstanceState]
    INSTANCE_STATE_ERROR: _ClassVar[InstanceState]

class HealthStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_STATUS_UNSPECIFIED: _ClassVar[HealthStatus]
    HEALTH_STATUS_HEALTHY: _ClassVar[HealthStatus]
    HEALTH_STATUS_DEGRADED: _ClassVar[HealthStatus]
    HEALTH_STATUS_UNHEALTHY: _ClassVar[HealthStatus]

class SyncMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYNC_MODE_UNSPECIFIED: _ClassVar[SyncMode]
    SYNC_MODE_INCREMENTAL: _ClassVar[SyncMode]
    SYNC_MODE_FULL: _ClassVar[SyncMode]

class SyncState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYNC_STATE_UNSPECIFIED: _ClassVar[SyncState]
    SYNC_STATE_PENDING: _ClassVar[SyncState]
    SYNC_STATE_RUNNING: _ClassVar[SyncState]
    SYNC_STATE_SUCCEEDED: _ClassVar[SyncState]
    SYNC_STATE_FAILED: _ClassVar[SyncState]
    SYNC_STATE_CANCELLED: _ClassVar[SyncState]

class WidgetRecordWrite(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WIDGET_RECORD_WRITE_UNSPECIFIED: _ClassVar[WidgetRecordWrite]
    WIDGET_RECORD_WRITE_CREATED: _ClassVar[WidgetRecordWrite]
    WIDGET_RECORD_WRITE_UPDATED: _ClassVar[WidgetRecordWrite]
    WIDGET_RECORD_WRITE_UNCHANGED: _ClassVar[WidgetRecordWrite]
    WIDGET_RECORD_WRITE_DELETED: _ClassVar[WidgetRecordWrite]
    WIDGET_RECORD_WRITE_ABSENT: _ClassVar[WidgetRecordWrite]
AUTH_TYPE_UNSPECIFIED: AuthType
AUTH_TYPE_BASIC: AuthType
AUTH_TYPE_OAUTH2_CLIENT_CREDENTIALS: AuthType
AUTH_TYPE_OAUTH2_PASSWORD: AuthType
INSTANCE_STATE_UNSPECIFIED: InstanceState
INSTANCE_STATE_ACTIVE: InstanceState
INSTANCE_STATE_DISABLED: InstanceState
INSTANCE_STATE_ERROR: InstanceState
HEALTH_STATUS_UNSPECIFIED: HealthStatus
HEALTH_STATUS_HEALTHY: HealthStatus
HEALTH_STATUS_DEGRADED: HealthStatus
HEALTH_STATUS_UNHEALTHY: HealthStatus
SYNC_MODE_UNSPECIFIED: SyncMode
SYNC_MODE_INCREMENTAL: SyncMode
SYNC_MODE_FULL: SyncMode
SYNC_STATE_UNSPECIFIED: SyncState
SYNC_STATE_PENDING: SyncState
SYNC_STATE_RUNNING: SyncState
SYNC_STATE_SUCCEEDED: SyncState
SYNC_STATE_FAILED: SyncState
SYNC_STATE_CANCELLED: SyncState
WIDGET_RECORD_WRITE_UNSPECIFIED: WidgetRecordWrite
WIDGET_RECORD_WRITE_CREATED: WidgetRecordWrite
WIDGET_RECORD_WRITE_UPDATED: WidgetRecordWrite
WIDGET_RECORD_WRITE_UNCHANGED: WidgetRecordWrite
WIDGET_RECORD_WRITE_DELETED: WidgetRecordWrite
WIDGET_RECORD_WRITE_ABSENT: WidgetRecordWrite

class Credentials(_message.Message):
    __slots__ = ("basic", "oauth")
    BASIC_FIELD_NUMBER: _ClassVar[int]
    OAUTH_FIELD_NUMBER: _ClassVar[int]
    basic: BasicCredentials
    oauth: OAuthCredentials
    def __init__(self, basic: _Optional[_Union[BasicCredentials, _Mapping]] = ..., oauth: _Optional[_Union[OAuthCredentials, _Mapping]] = ...) -> None: ...

class BasicCredentials(_message.Message):
    __slots__ = ("username", "password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class OAuthCredentials(_message.Message):
    __slots__ = ("client_id", "client_secret", "username", "password")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    client_secret: str
    username: str
    password: str
    def __init__(self, client_id: _Optional[str] = ..., client_secret: _Optional[str] = ..., username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class Instance(_message.Message):
    __slots__ = ("id", "organization_id", "name", "url", "auth_type", "credentials", "has_credentials", "state", "health_status", "sync_interval_minutes", "tables", "last_sync_time", "create_time", "update_time", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    AUTH_TYPE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    HAS_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    HEALTH_STATUS_FIELD_NUMBER: _ClassVar[int]
    SYNC_INTERVAL_MINUTES_FIELD_NUMBER: _ClassVar[int]
    TABLES_FIELD_NUMBER: _ClassVar[int]
    LAST_SYNC_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    name: str
    url: str
    auth_type: AuthType
    credentials: Credentials
    has_credentials: bool
    state: InstanceState
    health_status: HealthStatus
    sync_interval_minutes: int
    tables: _containers.RepeatedScalarFieldContainer[str]
    last_sync_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., name: _Optional[str] = ..., url: _Optional[str] = ..., auth_type: _Optional[_Union[AuthType, str]] = ..., credentials: _Optional[_Union[Credentials, _Mapping]] = ..., has_credentials: _Optional[bool] = ..., state: _Optional[_Union[InstanceState, str]] = ..., health_status: _Optional[_Union[HealthStatus, str]] = ..., sync_interval_minutes: _Optional[int] = ..., tables: _Optional[_Iterable[str]] = ..., last_sync_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class CreateInstanceRequest(_message.Message):
    __slots__ = ("instance", "validate_connection")
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_CONNECTION_FIELD_NUMBER: _ClassVar[int]
    instance: Instance
    validate_connection: bool
    def __init__(self, instance: _Optional[_Union[Instance, _Mapping]] = ..., validate_connection: _Optional[bool] = ...) -> None: ...

class ListInstancesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: InstanceState
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[InstanceState, str]] = ...) -> None: ...

class ListInstancesResponse(_message.Message):
    __slots__ = ("instances", "next_page_token", "total_size")
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    instances: _containers.RepeatedCompositeFieldContainer[Instance]
    next_page_token: str
    total_size: int
    def __init__(self, instances: _Optional[_Iterable[_Union[Instance, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class GetInstanceRequest(_message.Message):
    __slots__ = ("instance_id",)
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    def __init__(self, instance_id: _Optional[str] = ...) -> None: ...

class UpdateInstanceRequest(_message.Message):
    __slots__ = ("instance_id", "instance", "update_mask")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    instance: Instance
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, instance_id: _Optional[str] = ..., instance: _Optional[_Union[Instance, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteInstanceRequest(_message.Message):
    __slots__ = ("instance_id", "etag")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    etag: str
    def __init__(self, instance_id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class TestConnectionRequest(_message.Message):
    __slots__ = ("instance_id",)
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    def __init__(self, instance_id: _Optional[str] = ...) -> None: ...

class TableAccess(_message.Message):
    __slots__ = ("table", "readable", "record_count", "error")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    READABLE_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    table: str
    readable: bool
    record_count: int
    error: str
    def __init__(self, table: _Optional[str] = ..., readable: _Optional[bool] = ..., record_count: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class TestConnectionResponse(_message.Message):
    __slots__ = ("reachable", "authenticated", "success", "latency_ms", "tables", "error", "check_time")
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TABLES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CHECK_TIME_FIELD_NUMBER: _ClassVar[int]
    reachable: bool
    authenticated: bool
    success: bool
    latency_ms: int
    tables: _containers.RepeatedCompositeFieldContainer[TableAccess]
    error: str
    check_time: _timestamp_pb2.Timestamp
    def __init__(self, reachable: _Optional[bool] = ..., authenticated: _Optional[bool] = ..., success: _Optional[bool] = ..., latency_ms: _Optional[int] = ..., tables: _Optional[_Iterable[_Union[TableAccess, _Mapping]]] = ..., error: _Optional[str] = ..., check_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TableSyncStats(_message.Message):
    __slots__ = ("table", "fetched", "created", "updated", "deleted", "watermark_time")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    FETCHED_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    WATERMARK_TIME_FIELD_NUMBER: _ClassVar[int]
    table: str
    fetched: int
    created: int
    updated: int
    deleted: int
    watermark_time: _timestamp_pb2.Timestamp
    def __init__(self, table: _Optional[str] = ..., fetched: _Optional[int] = ..., created: _Optional[int] = ..., updated: _Optional[int] = ..., deleted: _Optional[int] = ..., watermark_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SyncRun(_message.Message):
    __slots__ = ("id", "organization_id", "instance_id", "mode", "state", "progress_percent", "tables", "triggered_by", "error", "create_time", "start_time", "end_time", "data_as_of_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_PERCENT_FIELD_NUMBER: _ClassVar[int]
    TABLES_FIELD_NUMBER: _ClassVar[int]
    TRIGGERED_BY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    DATA_AS_OF_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    instance_id: str
    mode: SyncMode
    state: SyncState
    progress_percent: int
    tables: _containers.RepeatedCompositeFieldContainer[TableSyncStats]
    triggered_by: str
    error: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    data_as_of_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., instance_id: _Optional[str] = ..., mode: _Optional[_Union[SyncMode, str]] = ..., state: _Optional[_Union[SyncState, str]] = ..., progress_percent: _Optional[int] = ..., tables: _Optional[_Iterable[_Union[TableSyncStats, _Mapping]]] = ..., triggered_by: _Optional[str] = ..., error: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data_as_of_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SyncInstanceRequest(_message.Message):
    __slots__ = ("instance_id", "mode", "tables")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    TABLES_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    mode: SyncMode
    tables: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, instance_id: _Optional[str] = ..., mode: _Optional[_Union[SyncMode, str]] = ..., tables: _Optional[_Iterable[str]] = ...) -> None: ...

class GetSyncRunRequest(_message.Message):
    __slots__ = ("instance_id", "sync_run_id")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    SYNC_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    sync_run_id: str
    def __init__(self, instance_id: _Optional[str] = ..., sync_run_id: _Optional[str] = ...) -> None: ...

class CancelSyncRunRequest(_message.Message):
    __slots__ = ("instance_id", "sync_run_id")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    SYNC_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    sync_run_id: str
    def __init__(self, instance_id: _Optional[str] = ..., sync_run_id: _Optional[str] = ...) -> None: ...

class ListSyncRunsRequest(_message.Message):
    __slots__ = ("instance_id", "page_size", "page_token", "state")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    page_size: int
    page_token: str
    state: SyncState
    def __init__(self, instance_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[SyncState, str]] = ...) -> None: ...

class ListSyncRunsResponse(_message.Message):
    __slots__ = ("sync_runs", "next_page_token")
    SYNC_RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sync_runs: _containers.RepeatedCompositeFieldContainer[SyncRun]
    next_page_token: str
    def __init__(self, sync_runs: _Optional[_Iterable[_Union[SyncRun, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetInstanceHealthRequest(_message.Message):
    __slots__ = ("instance_id", "history_size")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    HISTORY_SIZE_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    history_size: int
    def __init__(self, instance_id: _Optional[str] = ..., history_size: _Optional[int] = ...) -> None: ...

class HealthCheck(_message.Message):
    __slots__ = ("status", "latency_ms", "error", "check_time")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CHECK_TIME_FIELD_NUMBER: _ClassVar[int]
    status: HealthStatus
    latency_ms: int
    error: str
    check_time: _timestamp_pb2.Timestamp
    def __init__(self, status: _Optional[_Union[HealthStatus, str]] = ..., latency_ms: _Optional[int] = ..., error: _Optional[str] = ..., check_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class InstanceHealth(_message.Message):
    __slots__ = ("instance_id", "status", "availability_percent", "checks", "last_check_time")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    LAST_CHECK_TIME_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    status: HealthStatus
    availability_percent: float
    checks: _containers.RepeatedCompositeFieldContainer[HealthCheck]
    last_check_time: _timestamp_pb2.Timestamp
    def __init__(self, instance_id: _Optional[str] = ..., status: _Optional[_Union[HealthStatus, str]] = ..., availability_percent: _Optional[float] = ..., checks: _Optional[_Iterable[_Union[HealthCheck, _Mapping]]] = ..., last_check_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WriteWidgetRecordRequest(_message.Message):
    __slots__ = ("organization_id", "instance_id", "widget_key", "fields", "delete")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    WIDGET_KEY_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    instance_id: str
    widget_key: str
    fields: _containers.ScalarMap[str, str]
    delete: bool
    def __init__(self, organization_id: _Optional[str] = ..., instance_id: _Optional[str] = ..., widget_key: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ..., delete: _Optional[bool] = ...) -> None: ...

class WriteWidgetRecordResponse(_message.Message):
    __slots__ = ("sys_id", "write")
    SYS_ID_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELD_NUMBER: _ClassVar[int]
    sys_id: str
    write: WidgetRecordWrite
    def __init__(self, sys_id: _Optional[str] = ..., write: _Optional[_Union[WidgetRecordWrite, str]] = ...) -> None: ...
