import datetime

from complianceiq.analysis.v1 import analysis_pb2 as _analysis_pb2
from complianceiq.common.v1 import access_pb2 as _access_pb2
from complianceiq.common.v1 import common_pb2 as _common_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InsightStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INSIGHT_STATUS_UNSPECIFIED: _ClassVar[InsightStatus]
    INSIGHT_STATUS_OPEN: _ClassVar[InsightStatus]
    INSIGHT_STATUS_RESOLVED: _ClassVar[InsightStatus]

class InsightCategory(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INSIGHT_CATEGORY_UNSPECIFIED: _ClassVar[InsightCategory]
    INSIGHT_CATEGORY_CONTROL_EFFECTIVENESS: _ClassVar[InsightCategory]
    INSIGHT_CATEGORY_RISK: _ClassVar[InsightCategory]
    INSIGHT_CATEGORY_COMPLIANCE_GAP: _ClassVar[InsightCategory]
    INSIGHT_CATEGORY_PREDICTION: _ClassVar[InsightCategory]
    INSIGHT_CATEGORY_ANOMALY: _ClassVar[InsightCategory]

class ExportState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_STATE_UNSPECIFIED: _ClassVar[ExportState]
    EXPORT_STATE_PENDING: _ClassVar[ExportState]
    EXPORT_STATE_READY: _ClassVar[ExportState]
    EXPORT_STATE_FAILED: _ClassVar[ExportState]
INSIGHT_STATUS_UNSPECIFIED: InsightStatus
INSIGHT_STATUS_OPEN: InsightStatus
INSIGHT_STATUS_RESOLVED: InsightStatus
INSIGHT_CATEGORY_UNSPECIFIED: InsightCategory
INSIGHT_CATEGORY_CONTROL_EFFECTIVENESS: InsightCategory
INSIGHT_CATEGORY_RISK: InsightCategory
INSIGHT_CATEGORY_COMPLIANCE_GAP: InsightCategory
INSIGHT_CATEGORY_PREDICTION: InsightCategory
INSIGHT_CATEGORY_ANOMALY: InsightCategory
EXPORT_STATE_UNSPECIFIED: ExportState
EXPORT_STATE_PENDING: ExportState
EXPORT_STATE_READY: ExportState
EXPORT_STATE_FAILED: ExportState

class Insight(_message.Message):
    __slots__ = ("id", "organization_id", "instance_id", "analysis_job_id", "category", "severity", "title", "summary", "score", "metrics", "record_ids", "recommendations", "attributes", "create_time", "status", "finding", "subject", "sources", "last_seen_time", "resolve_time")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    RECORD_IDS_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FINDING_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_TIME_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    instance_id: str
    analysis_job_id: str
    category: InsightCategory
    severity: _common_pb2.Severity
    title: str
    summary: str
    score: float
    metrics: _containers.RepeatedCompositeFieldContainer[_common_pb2.Metric]
    record_ids: _containers.RepeatedScalarFieldContainer[str]
    recommendations: _containers.RepeatedScalarFieldContainer[str]
    attributes: _containers.ScalarMap[str, str]
    create_time: _timestamp_pb2.Timestamp
    status: InsightStatus
    finding: str
    subject: _analysis_pb2.RecordLink
    sources: _containers.RepeatedCompositeFieldContainer[_analysis_pb2.RecordLink]
    last_seen_time: _timestamp_pb2.Timestamp
    resolve_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., instance_id: _Optional[str] = ..., analysis_job_id: _Optional[str] = ..., category: _Optional[_Union[InsightCategory, str]] = ..., severity: _Optional[_Union[_common_pb2.Severity, str]] = ..., title: _Optional[str] = ..., summary: _Optional[str] = ..., score: _Optional[float] = ..., metrics: _Optional[_Iterable[_Union[_common_pb2.Metric, _Mapping]]] = ..., record_ids: _Optional[_Iterable[str]] = ..., recommendations: _Optional[_Iterable[str]] = ..., attributes: _Optional[_Mapping[str, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[InsightStatus, str]] = ..., finding: _Optional[str] = ..., subject: _Optional[_Union[_analysis_pb2.RecordLink, _Mapping]] = ..., sources: _Optional[_Iterable[_Union[_analysis_pb2.RecordLink, _Mapping]]] = ..., last_seen_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolve_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetInstanceInsightsRequest(_message.Message):
    __slots__ = ("instance_id", "categories", "min_severity")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    MIN_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    categories: _containers.RepeatedScalarFieldContainer[InsightCategory]
    min_severity: _common_pb2.Severity
    def __init__(self, instance_id: _Optional[str] = ..., categories: _Optional[_Iterable[_Union[InsightCategory, str]]] = ..., min_severity: _Optional[_Union[_common_pb2.Severity, str]] = ...) -> None: ...

class InstanceInsights(_message.Message):
    __slots__ = ("instance_id", "posture_score", "insights", "metrics", "generate_time")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    POSTURE_SCORE_FIELD_NUMBER: _ClassVar[int]
    INSIGHTS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    GENERATE_TIME_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    posture_score: float
    insights: _containers.RepeatedCompositeFieldContainer[Insight]
    metrics: _containers.RepeatedCompositeFieldContainer[_common_pb2.Metric]
    generate_time: _timestamp_pb2.Timestamp
    def __init__(self, instance_id: _Optional[str] = ..., posture_score: _Optional[float] = ..., insights: _Optional[_Iterable[_Union[Insight, _Mapping]]] = ..., metrics: _Optional[_Iterable[_Union[_common_pb2.Metric, _Mapping]]] = ..., generate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetInsightHistoryRequest(_message.Message):
    __slots__ = ("instance_id", "page_size", "page_token", "period", "category")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    page_size: int
    page_token: str
    period: _common_pb2.TimeRange
    category: InsightCategory
    def __init__(self, instance_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., period: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ..., category: _Optional[_Union[InsightCategory, str]] = ...) -> None: ...

class InsightHistoryEntry(_message.Message):
    __slots__ = ("analysis_job_id", "posture_score", "insights_by_severity", "new_insight_ids", "resolved_insight_ids", "create_time", "persisting_insight_ids", "analysis_type", "score")
    class InsightsBySeverityEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ANALYSIS_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    POSTURE_SCORE_FIELD_NUMBER: _ClassVar[int]
    INSIGHTS_BY_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    NEW_INSIGHT_IDS_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_INSIGHT_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PERSISTING_INSIGHT_IDS_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_TYPE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    analysis_job_id: str
    posture_score: float
    insights_by_severity: _containers.ScalarMap[str, int]
    new_insight_ids: _containers.RepeatedScalarFieldContainer[str]
    resolved_insight_ids: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    persisting_insight_ids: _containers.RepeatedScalarFieldContainer[str]
    analysis_type: _analysis_pb2.AnalysisType
    score: float
    def __init__(self, analysis_job_id: _Optional[str] = ..., posture_score: _Optional[float] = ..., insights_by_severity: _Optional[_Mapping[str, int]] = ..., new_insight_ids: _Optional[_Iterable[str]] = ..., resolved_insight_ids: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., persisting_insight_ids: _Optional[_Iterable[str]] = ..., analysis_type: _Optional[_Union[_analysis_pb2.AnalysisType, str]] = ..., score: _Optional[float] = ...) -> None: ...

class GetInsightHistoryResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[InsightHistoryEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[InsightHistoryEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetInsightTrendsRequest(_message.Message):
    __slots__ = ("instance_id", "metrics", "period", "interval")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    metrics: _containers.RepeatedScalarFieldContainer[str]
    period: _common_pb2.TimeRange
    interval: _common_pb2.Interval
    def __init__(self, instance_id: _Optional[str] = ..., metrics: _Optional[_Iterable[str]] = ..., period: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ..., interval: _Optional[_Union[_common_pb2.Interval, str]] = ...) -> None: ...

class GetInsightTrendsResponse(_message.Message):
    __slots__ = ("series",)
    SERIES_FIELD_NUMBER: _ClassVar[int]
    series: _containers.RepeatedCompositeFieldContainer[_common_pb2.TimeSeries]
    def __init__(self, series: _Optional[_Iterable[_Union[_common_pb2.TimeSeries, _Mapping]]] = ...) -> None: ...

class CompareInsightsRequest(_message.Message):
    __slots__ = ("left_instance_id", "right_instance_id", "left_time", "right_time")
    LEFT_INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    RIGHT_INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    LEFT_TIME_FIELD_NUMBER: _ClassVar[int]
    RIGHT_TIME_FIELD_NUMBER: _ClassVar[int]
    left_instance_id: str
    right_instance_id: str
    left_time: _timestamp_pb2.Timestamp
    right_time: _timestamp_pb2.Timestamp
    def __init__(self, left_instance_id: _Optional[str] = ..., right_instance_id: _Optional[str] = ..., left_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., right_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MetricComparison(_message.Message):
    __slots__ = ("metric", "left_value", "right_value", "delta")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    LEFT_VALUE_FIELD_NUMBER: _ClassVar[int]
    RIGHT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    metric: str
    left_value: float
    right_value: float
    delta: float
    def __init__(self, metric: _Optional[str] = ..., left_value: _Optional[float] = ..., right_value: _Optional[float] = ..., delta: _Optional[float] = ...) -> None: ...

class CompareInsightsResponse(_message.Message):
    __slots__ = ("metrics", "only_left", "only_right")
    METRICS_FIELD_NUMBER: _ClassVar[int]
    ONLY_LEFT_FIELD_NUMBER: _ClassVar[int]
    ONLY_RIGHT_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.RepeatedCompositeFieldContainer[MetricComparison]
    only_left: _containers.RepeatedCompositeFieldContainer[Insight]
    only_right: _containers.RepeatedCompositeFieldContainer[Insight]
    def __init__(self, metrics: _Optional[_Iterable[_Union[MetricComparison, _Mapping]]] = ..., only_left: _Optional[_Iterable[_Union[Insight, _Mapping]]] = ..., only_right: _Optional[_Iterable[_Union[Insight, _Mapping]]] = ...) -> None: ...

class Export(_message.Message):
    __slots__ = ("id", "organization_id", "insight_id", "format", "state", "download_uri", "size_bytes", "expire_time", "create_time", "error", "file_name")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_URI_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    insight_id: str
    format: _common_pb2.ExportFormat
    state: ExportState
    download_uri: str
    size_bytes: int
    expire_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    error: str
    file_name: str
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., insight_id: _Optional[str] = ..., format: _Optional[_Union[_common_pb2.ExportFormat, str]] = ..., state: _Optional[_Union[ExportState, str]] = ..., download_uri: _Optional[str] = ..., size_bytes: _Optional[int] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[str] = ..., file_name: _Optional[str] = ...) -> None: ...

class GetExportRequest(_message.Message):
    __slots__ = ("export_id",)
    EXPORT_ID_FIELD_NUMBER: _ClassVar[int]
    export_id: str
    def __init__(self, export_id: _Optional[str] = ...) -> None: ...

class DownloadExportRequest(_message.Message):
    __slots__ = ("export_id", "organization_id", "expires", "signature")
    EXPORT_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    export_id: str
    organization_id: str
    expires: int
    signature: str
    def __init__(self, export_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., expires: _Optional[int] = ..., signature: _Optional[str] = ...) -> None: ...

class ExportInsightRequest(_message.Message):
    __slots__ = ("insight_id", "format")
    INSIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    insight_id: str
    format: _common_pb2.ExportFormat
    def __init__(self, insight_id: _Optional[str] = ..., format: _Optional[_Union[_common_pb2.ExportFormat, str]] = ...) -> None: ...

class SearchInsightsRequest(_message.Message):
    __slots__ = ("query", "instance_ids", "categories", "min_severity", "period", "page_size", "page_token")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_IDS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    MIN_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    query: str
    instance_ids: _containers.RepeatedScalarFieldContainer[str]
    categories: _containers.RepeatedScalarFieldContainer[InsightCategory]
    min_severity: _common_pb2.Severity
    period: _common_pb2.TimeRange
    page_size: int
    page_token: str
    def __init__(self, query: _Optional[str] = ..., instance_ids: _Optional[_Iterable[str]] = ..., categories: _Optional[_Iterable[_Union[InsightCategory, str]]] = ..., min_severity: _Optional[_Union[_common_pb2.Severity, str]] = ..., period: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class SearchInsightsResponse(_message.Message):
    __slots__ = ("insights", "next_page_token", "total_size")
    INSIGHTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    insights: _containers.RepeatedCompositeFieldContainer[Insight]
    next_page_token: str
    total_size: int
    def __init__(self, insights: _Optional[_Iterable[_Union[Insight, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class SavedReport(_message.Message):
    __slots__ = ("id", "organization_id", "insight_id", "name", "notes", "insight", "created_by", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    INSIGHT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    insight_id: str
    name: str
    notes: str
    insight: Insight
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., insight_id: _Optional[str] = ..., name: _Optional[str] = ..., notes: _Optional[str] = ..., insight: _Optional[_Union[Insight, _Mapping]] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SaveInsightRequest(_message.Message):
    __slots__ = ("insight_id", "name", "notes")
    INSIGHT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    insight_id: str
    name: str
    notes: str
    def __init__(self, insight_id: _Optional[str] = ..., name: _Optional[str] = ..., notes: _Optional[str] = ...) -> None: ...

class ListSavedReportsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetSavedReportRequest(_message.Message):
    __slots__ = ("report_id",)
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    def __init__(self, report_id: _Optional[str] = ...) -> None: ...

class DeleteSavedReportRequest(_message.Message):
    __slots__ = ("report_id",)
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    report_id: str
    def __init__(self, report_id: _Optional[str] = ...) -> None: ...

class ListSavedReportsResponse(_message.Message):
    __slots__ = ("saved_reports", "next_page_token")
    SAVED_REPORTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    saved_reports: _containers.RepeatedCompositeFieldContainer[SavedReport]
    next_page_token: str
    def __init__(self, saved_reports: _Optional[_Iterable[_Union[SavedReport, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
