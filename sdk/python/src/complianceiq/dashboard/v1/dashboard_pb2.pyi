import datetime

from complianceiq.common.v1 import access_pb2 as _access_pb2
from complianceiq.common.v1 import common_pb2 as _common_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
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

class ReportFrequency(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPORT_FREQUENCY_UNSPECIFIED: _ClassVar[ReportFrequency]
    REPORT_FREQUENCY_DAILY: _ClassVar[ReportFrequency]
    REPORT_FREQUENCY_WEEKLY: _ClassVar[ReportFrequency]
    REPORT_FREQUENCY_MONTHLY: _ClassVar[ReportFrequency]
    REPORT_FREQUENCY_QUARTERLY: _ClassVar[ReportFrequency]

class ReportDelivery(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPORT_DELIVERY_UNSPECIFIED: _ClassVar[ReportDelivery]
    REPORT_DELIVERY_ATTACHMENT: _ClassVar[ReportDelivery]
    REPORT_DELIVERY_LINK: _ClassVar[ReportDelivery]

class ReportTrigger(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPORT_TRIGGER_UNSPECIFIED: _ClassVar[ReportTrigger]
    REPORT_TRIGGER_MANUAL: _ClassVar[ReportTrigger]
    REPORT_TRIGGER_SCHEDULED: _ClassVar[ReportTrigger]

class ReportState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REPORT_STATE_UNSPECIFIED: _ClassVar[ReportState]
    REPORT_STATE_PENDING: _ClassVar[ReportState]
    REPORT_STATE_READY: _ClassVar[ReportState]
    REPORT_STATE_FAILED: _ClassVar[ReportState]
REPORT_FREQUENCY_UNSPECIFIED: ReportFrequency
REPORT_FREQUENCY_DAILY: ReportFrequency
REPORT_FREQUENCY_WEEKLY: ReportFrequency
REPORT_FREQUENCY_MONTHLY: ReportFrequency
REPORT_FREQUENCY_QUARTERLY: ReportFrequency
REPORT_DELIVERY_UNSPECIFIED: ReportDelivery
REPORT_DELIVERY_ATTACHMENT: ReportDelivery
REPORT_DELIVERY_LINK: ReportDelivery
REPORT_TRIGGER_UNSPECIFIED: ReportTrigger
REPORT_TRIGGER_MANUAL: ReportTrigger
REPORT_TRIGGER_SCHEDULED: ReportTrigger
REPORT_STATE_UNSPECIFIED: ReportState
REPORT_STATE_PENDING: ReportState
REPORT_STATE_READY: ReportState
REPORT_STATE_FAILED: ReportState

class GetDashboardSummaryRequest(_message.Message):
    __slots__ = ("period",)
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    period: _common_pb2.TimeRange
    def __init__(self, period: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ...) -> None: ...

class InstanceSummary(_message.Message):
    __slots__ = ("instance_id", "instance_name", "posture_score", "critical_findings", "last_sync_time")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_NAME_FIELD_NUMBER: _ClassVar[int]
    POSTURE_SCORE_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_FINDINGS_FIELD_NUMBER: _ClassVar[int]
    LAST_SYNC_TIME_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    instance_name: str
    posture_score: float
    critical_findings: int
    last_sync_time: _timestamp_pb2.Timestamp
    def __init__(self, instance_id: _Optional[str] = ..., instance_name: _Optional[str] = ..., posture_score: _Optional[float] = ..., critical_findings: _Optional[int] = ..., last_sync_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DashboardSummary(_message.Message):
    __slots__ = ("organization_id", "posture_score", "metrics", "instances", "findings_by_severity", "compute_time")
    class FindingsBySeverityEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    POSTURE_SCORE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_BY_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TIME_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    posture_score: float
    metrics: _containers.RepeatedCompositeFieldContainer[_common_pb2.Metric]
    instances: _containers.RepeatedCompositeFieldContainer[InstanceSummary]
    findings_by_severity: _containers.ScalarMap[str, int]
    compute_time: _timestamp_pb2.Timestamp
    def __init__(self, organization_id: _Optional[str] = ..., posture_score: _Optional[float] = ..., metrics: _Optional[_Iterable[_Union[_common_pb2.Metric, _Mapping]]] = ..., instances: _Optional[_Iterable[_Union[InstanceSummary, _Mapping]]] = ..., findings_by_severity: _Optional[_Mapping[str, int]] = ..., compute_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetInstanceMetricsRequest(_message.Message):
    __slots__ = ("instance_id", "period")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    period: _common_pb2.TimeRange
    def __init__(self, instance_id: _Optional[str] = ..., period: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ...) -> None: ...

class InstanceMetrics(_message.Message):
    __slots__ = ("instance_id", "control_count", "effective_control_count", "risk_count", "high_risk_count", "open_issue_count", "compliance_gap_count", "metrics", "compute_time", "framework_coverage")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTROL_COUNT_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_CONTROL_COUNT_FIELD_NUMBER: _ClassVar[int]
    RISK_COUNT_FIELD_NUMBER: _ClassVar[int]
    HIGH_RISK_COUNT_FIELD_NUMBER: _ClassVar[int]
    OPEN_ISSUE_COUNT_FIELD_NUMBER: _ClassVar[int]
    COMPLIANCE_GAP_COUNT_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TIME_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_COVERAGE_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    control_count: int
    effective_control_count: int
    risk_count: int
    high_risk_count: int
    open_issue_count: int
    compliance_gap_count: int
    metrics: _containers.RepeatedCompositeFieldContainer[_common_pb2.Metric]
    compute_time: _timestamp_pb2.Timestamp
    framework_coverage: _containers.RepeatedCompositeFieldContainer[FrameworkCoverage]
    def __init__(self, instance_id: _Optional[str] = ..., control_count: _Optional[int] = ..., effective_control_count: _Optional[int] = ..., risk_count: _Optional[int] = ..., high_risk_count: _Optional[int] = ..., open_issue_count: _Optional[int] = ..., compliance_gap_count: _Optional[int] = ..., metrics: _Optional[_Iterable[_Union[_common_pb2.Metric, _Mapping]]] = ..., compute_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., framework_coverage: _Optional[_Iterable[_Union[FrameworkCoverage, _Mapping]]] = ...) -> None: ...

class FrameworkCoverage(_message.Message):
    __slots__ = ("policy_sys_id", "name", "requirement_count", "covered_requirement_count", "coverage_percent")
    POLICY_SYS_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    COVERED_REQUIREMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    policy_sys_id: str
    name: str
    requirement_count: int
    covered_requirement_count: int
    coverage_percent: float
    def __init__(self, policy_sys_id: _Optional[str] = ..., name: _Optional[str] = ..., requirement_count: _Optional[int] = ..., covered_requirement_count: _Optional[int] = ..., coverage_percent: _Optional[float] = ...) -> None: ...

class GetOrganizationMetricsRequest(_message.Message):
    __slots__ = ("period",)
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    period: _common_pb2.TimeRange
    def __init__(self, period: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ...) -> None: ...

class OrganizationMetrics(_message.Message):
    __slots__ = ("organization_id", "instance_count", "totals", "instances", "compute_time")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TIME_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    instance_count: int
    totals: InstanceMetrics
    instances: _containers.RepeatedCompositeFieldContainer[InstanceMetrics]
    compute_time: _timestamp_pb2.Timestamp
    def __init__(self, organization_id: _Optional[str] = ..., instance_count: _Optional[int] = ..., totals: _Optional[_Union[InstanceMetrics, _Mapping]] = ..., instances: _Optional[_Iterable[_Union[InstanceMetrics, _Mapping]]] = ..., compute_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetAnalyticsRequest(_message.Message):
    __slots__ = ("metrics", "instance_ids", "period", "interval")
    METRICS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_IDS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.RepeatedScalarFieldContainer[str]
    instance_ids: _containers.RepeatedScalarFieldContainer[str]
    period: _common_pb2.TimeRange
    interval: _common_pb2.Interval
    def __init__(self, metrics: _Optional[_Iterable[str]] = ..., instance_ids: _Optional[_Iterable[str]] = ..., period: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ..., interval: _Optional[_Union[_common_pb2.Interval, str]] = ...) -> None: ...

class GetAnalyticsResponse(_message.Message):
    __slots__ = ("series",)
    SERIES_FIELD_NUMBER: _ClassVar[int]
    series: _containers.RepeatedCompositeFieldContainer[_common_pb2.TimeSeries]
    def __init__(self, series: _Optional[_Iterable[_Union[_common_pb2.TimeSeries, _Mapping]]] = ...) -> None: ...

class Report(_message.Message):
    __slots__ = ("id", "organization_id", "name", "description", "metrics", "instance_ids", "format", "frequency", "recipients", "state", "download_uri", "last_render_time", "next_render_time", "created_by", "create_time", "schedule", "time_zone", "delivery", "comparison_days", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_IDS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_URI_FIELD_NUMBER: _ClassVar[int]
    LAST_RENDER_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_RENDER_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_DAYS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    name: str
    description: str
    metrics: _containers.RepeatedScalarFieldContainer[str]
    instance_ids: _containers.RepeatedScalarFieldContainer[str]
    format: _common_pb2.ExportFormat
    frequency: ReportFrequency
    recipients: _containers.RepeatedScalarFieldContainer[str]
    state: ReportState
    download_uri: str
    last_render_time: _timestamp_pb2.Timestamp
    next_render_time: _timestamp_pb2.Timestamp
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    schedule: str
    time_zone: str
    delivery: ReportDelivery
    comparison_days: int
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., metrics: _Optional[_Iterable[str]] = ..., instance_ids: _Optional[_Iterable[str]] = ..., format: _Optional[_Union[_common_pb2.ExportFormat, str]] = ..., frequency: _Optional[_Union[ReportFrequency, str]] = ..., recipients: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[ReportState, str]] = ..., download_uri: _Optional[str] = ..., last_render_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_render_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., schedule: _Optional[str] = ..., time_zone: _Optional[str] = ..., delivery: _Optional[_Union[ReportDelivery, str]] = ..., comparison_days: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReportRun(_message.Message):
    __slots__ = ("id", "report_id", "trigger", "state", "format", "file_name", "size_bytes", "download_uri", "expire_time", "delivered_to", "error", "create_time", "end_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_URI_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_TO_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    report_id: str
    trigger: ReportTrigger
    state: ReportState
    format: _common_pb2.ExportFormat
    file_name: str
    size_bytes: int
    download_uri: str
    expire_time: _timestamp_pb2.Timestamp
    delivered_to: _containers.RepeatedScalarFieldContainer[str]
    error: str
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., report_id: _Optional[str] = ..., trigger: _Optional[_Union[ReportTrigger, str]] = ..., state: _Optional[_Union[ReportState, str]] = ..., format: _Optional[_Union[_common_pb2.ExportFormat, str]] = ..., file_name: _Optional[str] = ..., size_bytes: _Optional[int] = ..., download_uri: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delivered_to: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateReportRequest(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: Report
    def __init__(self, report: _Optional[_Union[Report, _Mapping]] = ...) -> None: ...

class ListReportsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListReportsResponse(_message.Message):
    __slots__ = ("reports", "next_page_token")
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[Report]
    next_page_token: str
    def __init__(self, reports: _Optional[_Iterable[_Union[Report, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetReportRequest(_message.Message):
    __slots__ = ("report_id",)
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    def __init__(self, report_id: _Optional[str] = ...) -> None: ...

class UpdateReportRequest(_message.Message):
    __slots__ = ("report_id", "report", "update_mask")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    report: Report
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, report_id: _Optional[str] = ..., report: _Optional[_Union[Report, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteReportRequest(_message.Message):
    __slots__ = ("report_id",)
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    def __init__(self, report_id: _Optional[str] = ...) -> None: ...

class RunReportRequest(_message.Message):
    __slots__ = ("report_id",)
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    def __init__(self, report_id: _Optional[str] = ...) -> None: ...

class ListReportRunsRequest(_message.Message):
    __slots__ = ("report_id", "page_size", "page_token")
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    page_size: int
    page_token: str
    def __init__(self, report_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListReportRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[ReportRun]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[ReportRun, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DownloadReportRunRequest(_message.Message):
    __slots__ = ("run_id", "organization_id", "expires", "signature")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    organization_id: str
    expires: int
    signature: str
    def __init__(self, run_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., expires: _Optional[int] = ..., signature: _Optional[str] = ...) -> None: ...
