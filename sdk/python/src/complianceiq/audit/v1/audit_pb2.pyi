import datetime

from complianceiq.common.v1 import access_pb2 as _access_pb2
from complianceiq.common.v1 import common_pb2 as _common_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_SUCCESS: _ClassVar[Outcome]
    OUTCOME_FAILURE: _ClassVar[Outcome]
    OUTCOME_DENIED: _ClassVar[Outcome]

class AuditReportState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_REPORT_STATE_UNSPECIFIED: _ClassVar[AuditReportState]
    AUDIT_REPORT_STATE_PENDING: _ClassVar[AuditReportState]
    AUDIT_REPORT_STATE_READY: _ClassVar[AuditReportState]
    AUDIT_REPORT_STATE_FAILED: _ClassVar[AuditReportState]
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_SUCCESS: Outcome
OUTCOME_FAILURE: Outcome
OUTCOME_DENIED: Outcome
AUDIT_REPORT_STATE_UNSPECIFIED: AuditReportState
AUDIT_REPORT_STATE_PENDING: AuditReportState
AUDIT_REPORT_STATE_READY: AuditReportState
AUDIT_REPORT_STATE_FAILED: AuditReportState

class Actor(_message.Message):
    __slots__ = ("user_id", "email", "service", "ip_address", "user_agent")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    service: str
    ip_address: str
    user_agent: str
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., service: _Optional[str] = ..., ip_address: _Optional[str] = ..., user_agent: _Optional[str] = ...) -> None: ...

class AuditLog(_message.Message):
    __slots__ = ("id", "organization_id", "actor", "action", "resource_type", "resource_id", "outcome", "metadata", "request_id", "event_time", "create_time", "rpc", "status_code", "sequence", "hash", "previous_hash")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HASH_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    actor: Actor
    action: str
    resource_type: str
    resource_id: str
    outcome: Outcome
    metadata: _containers.ScalarMap[str, str]
    request_id: str
    event_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    rpc: str
    status_code: int
    sequence: int
    hash: str
    previous_hash: str
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., actor: _Optional[_Union[Actor, _Mapping]] = ..., action: _Optional[str] = ..., resource_type: _Optional[str] = ..., resource_id: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rpc: _Optional[str] = ..., status_code: _Optional[int] = ..., sequence: _Optional[int] = ..., hash: _Optional[str] = ..., previous_hash: _Optional[str] = ...) -> None: ...

class VerifyAuditTrailRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuditTrailVerification(_message.Message):
    __slots__ = ("intact", "entries_checked", "first_broken_log_id", "first_broken_sequence", "problem", "checkpoint_sequence", "checkpoint_time")
    INTACT_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    FIRST_BROKEN_LOG_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_BROKEN_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_TIME_FIELD_NUMBER: _ClassVar[int]
    intact: bool
    entries_checked: int
    first_broken_log_id: str
    first_broken_sequence: int
    problem: str
    checkpoint_sequence: int
    checkpoint_time: _timestamp_pb2.Timestamp
    def __init__(self, intact: _Optional[bool] = ..., entries_checked: _Optional[int] = ..., first_broken_log_id: _Optional[str] = ..., first_broken_sequence: _Optional[int] = ..., problem: _Optional[str] = ..., checkpoint_sequence: _Optional[int] = ..., checkpoint_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateAuditLogRequest(_message.Message):
    __slots__ = ("audit_log",)
    AUDIT_LOG_FIELD_NUMBER: _ClassVar[int]
    audit_log: AuditLog
    def __init__(self, audit_log: _Optional[_Union[AuditLog, _Mapping]] = ...) -> None: ...

class ListAuditLogsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "user_id", "action", "resource_type", "resource_id", "period", "outcome", "query")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    user_id: str
    action: str
    resource_type: str
    resource_id: str
    period: _common_pb2.TimeRange
    outcome: Outcome
    query: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., user_id: _Optional[str] = ..., action: _Optional[str] = ..., resource_type: _Optional[str] = ..., resource_id: _Optional[str] = ..., period: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., query: _Optional[str] = ...) -> None: ...

class ListAuditLogsResponse(_message.Message):
    __slots__ = ("audit_logs", "next_page_token")
    AUDIT_LOGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    audit_logs: _containers.RepeatedCompositeFieldContainer[AuditLog]
    next_page_token: str
    def __init__(self, audit_logs: _Optional[_Iterable[_Union[AuditLog, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetAuditLogRequest(_message.Message):
    __slots__ = ("log_id",)
    LOG_ID_FIELD_NUMBER: _ClassVar[int]
    log_id: str
    def __init__(self, log_id: _Optional[str] = ...) -> None: ...

class SecurityEvent(_message.Message):
    __slots__ = ("id", "organization_id", "type", "severity", "actor", "metadata", "event_time")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    type: str
    severity: _common_pb2.Severity
    actor: Actor
    metadata: _containers.ScalarMap[str, str]
    event_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., type: _Optional[str] = ..., severity: _Optional[_Union[_common_pb2.Severity, str]] = ..., actor: _Optional[_Union[Actor, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListSecurityEventsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "type", "min_severity", "period")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MIN_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    type: str
    min_severity: _common_pb2.Severity
    period: _common_pb2.TimeRange
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., type: _Optional[str] = ..., min_severity: _Optional[_Union[_common_pb2.Severity, str]] = ..., period: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ...) -> None: ...

class ListSecurityEventsResponse(_message.Message):
    __slots__ = ("security_events", "next_page_token")
    SECURITY_EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    security_events: _containers.RepeatedCompositeFieldContainer[SecurityEvent]
    next_page_token: str
    def __init__(self, security_events: _Optional[_Iterable[_Union[SecurityEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ComplianceEvent(_message.Message):
    __slots__ = ("id", "organization_id", "instance_id", "type", "severity", "description", "record_ids", "metadata", "event_time")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RECORD_IDS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    instance_id: str
    type: str
    severity: _common_pb2.Severity
    description: str
    record_ids: _containers.RepeatedScalarFieldContainer[str]
    metadata: _containers.ScalarMap[str, str]
    event_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., instance_id: _Optional[str] = ..., type: _Optional[str] = ..., severity: _Optional[_Union[_common_pb2.Severity, str]] = ..., description: _Optional[str] = ..., record_ids: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListComplianceEventsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "instance_id", "type", "min_severity", "period")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MIN_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    instance_id: str
    type: str
    min_severity: _common_pb2.Severity
    period: _common_pb2.TimeRange
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., instance_id: _Optional[str] = ..., type: _Optional[str] = ..., min_severity: _Optional[_Union[_common_pb2.Severity, str]] = ..., period: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ...) -> None: ...

class ListComplianceEventsResponse(_message.Message):
    __slots__ = ("compliance_events", "next_page_token")
    COMPLIANCE_EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    compliance_events: _containers.RepeatedCompositeFieldContainer[ComplianceEvent]
    next_page_token: str
    def __init__(self, compliance_events: _Optional[_Iterable[_Union[ComplianceEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AuditReport(_message.Message):
    __slots__ = ("id", "organization_id", "title", "period", "format", "include_security_events", "include_compliance_events", "state", "download_uri", "entry_count", "created_by", "create_time", "error", "download_expire_time", "size_bytes", "file_name", "first_sequence", "last_sequence", "last_hash", "trail_intact")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_SECURITY_EVENTS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_COMPLIANCE_EVENTS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_URI_FIELD_NUMBER: _ClassVar[int]
    ENTRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_HASH_FIELD_NUMBER: _ClassVar[int]
    TRAIL_INTACT_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    title: str
    period: _common_pb2.TimeRange
    format: _common_pb2.ExportFormat
    include_security_events: bool
    include_compliance_events: bool
    state: AuditReportState
    download_uri: str
    entry_count: int
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    error: str
    download_expire_time: _timestamp_pb2.Timestamp
    size_bytes: int
    file_name: str
    first_sequence: int
    last_sequence: int
    last_hash: str
    trail_intact: bool
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., title: _Optional[str] = ..., period: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ..., format: _Optional[_Union[_common_pb2.ExportFormat, str]] = ..., include_security_events: _Optional[bool] = ..., include_compliance_events: _Optional[bool] = ..., state: _Optional[_Union[AuditReportState, str]] = ..., download_uri: _Optional[str] = ..., entry_count: _Optional[int] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[str] = ..., download_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., size_bytes: _Optional[int] = ..., file_name: _Optional[str] = ..., first_sequence: _Optional[int] = ..., last_sequence: _Optional[int] = ..., last_hash: _Optional[str] = ..., trail_intact: _Optional[bool] = ...) -> None: ...

class CreateAuditReportRequest(_message.Message):
    __slots__ = ("audit_report",)
    AUDIT_REPORT_FIELD_NUMBER: _ClassVar[int]
    audit_report: AuditReport
    def __init__(self, audit_report: _Optional[_Union[AuditReport, _Mapping]] = ...) -> None: ...

class ListAuditReportsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetAuditReportRequest(_message.Message):
    __slots__ = ("report_id",)
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    def __init__(self, report_id: _Optional[str] = ...) -> None: ...

class DownloadAuditReportRequest(_message.Message):
    __slots__ = ("report_id", "organization_id", "expires", "signature")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    organization_id: str
    expires: int
    signature: str
    def __init__(self, report_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., expires: _Optional[int] = ..., signature: _Optional[str] = ...) -> None: ...

class ListAuditReportsResponse(_message.Message):
    __slots__ = ("audit_reports", "next_page_token")
    AUDIT_REPORTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    audit_reports: _containers.RepeatedCompositeFieldContainer[AuditReport]
    next_page_token: str
    def __init__(self, audit_reports: _Optional[_Iterable[_Union[AuditReport, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
