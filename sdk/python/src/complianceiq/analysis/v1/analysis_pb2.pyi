import datetime

from complianceiq.common.v1 import access_pb2 as _access_pb2
from complianceiq.common.v1 import common_pb2 as _common_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AnalysisType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANALYSIS_TYPE_UNSPECIFIED: _ClassVar[AnalysisType]
    ANALYSIS_TYPE_CONTROL_EFFECTIVENESS: _ClassVar[AnalysisType]
    ANALYSIS_TYPE_RISK_CORRELATION: _ClassVar[AnalysisType]
    ANALYSIS_TYPE_COMPLIANCE_GAP: _ClassVar[AnalysisType]
    ANALYSIS_TYPE_PREDICTIVE: _ClassVar[AnalysisType]
    ANALYSIS_TYPE_ANOMALY_DETECTION: _ClassVar[AnalysisType]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class EffectivenessRating(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EFFECTIVENESS_RATING_UNSPECIFIED: _ClassVar[EffectivenessRating]
    EFFECTIVENESS_RATING_EFFECTIVE: _ClassVar[EffectivenessRating]
    EFFECTIVENESS_RATING_PARTIALLY_EFFECTIVE: _ClassVar[EffectivenessRating]
    EFFECTIVENESS_RATING_INEFFECTIVE: _ClassVar[EffectivenessRating]
    EFFECTIVENESS_RATING_NOT_TESTED: _ClassVar[EffectivenessRating]
ANALYSIS_TYPE_UNSPECIFIED: AnalysisType
ANALYSIS_TYPE_CONTROL_EFFECTIVENESS: AnalysisType
ANALYSIS_TYPE_RISK_CORRELATION: AnalysisType
ANALYSIS_TYPE_COMPLIANCE_GAP: AnalysisType
ANALYSIS_TYPE_PREDICTIVE: AnalysisType
ANALYSIS_TYPE_ANOMALY_DETECTION: AnalysisType
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
EFFECTIVENESS_RATING_UNSPECIFIED: EffectivenessRating
EFFECTIVENESS_RATING_EFFECTIVE: EffectivenessRating
EFFECTIVENESS_RATING_PARTIALLY_EFFECTIVE: EffectivenessRating
EFFECTIVENESS_RATING_INEFFECTIVE: EffectivenessRating
EFFECTIVENESS_RATING_NOT_TESTED: EffectivenessRating

class AnalysisSummary(_message.Message):
    __slots__ = ("score", "records_analyzed", "findings_by_severity", "insight_ids", "metrics")
    class FindingsBySeverityEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_ANALYZED_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_BY_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    INSIGHT_IDS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    score: float
    records_analyzed: int
    findings_by_severity: _containers.ScalarMap[str, int]
    insight_ids: _containers.RepeatedScalarFieldContainer[str]
    metrics: _containers.RepeatedCompositeFieldContainer[_common_pb2.Metric]
    def __init__(self, score: _Optional[float] = ..., records_analyzed: _Optional[int] = ..., findings_by_severity: _Optional[_Mapping[str, int]] = ..., insight_ids: _Optional[_Iterable[str]] = ..., metrics: _Optional[_Iterable[_Union[_common_pb2.Metric, _Mapping]]] = ...) -> None: ...

class AnalysisJob(_message.Message):
    __slots__ = ("id", "organization_id", "instance_id", "type", "state", "progress_percent", "parameters", "summary", "error", "created_by", "create_time", "start_time", "end_time", "data_as_of_sync_run_id", "data_as_of_time")
    class ParametersEntry(_message.Message):
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
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_PERCENT_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    DATA_AS_OF_SYNC_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_AS_OF_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    instance_id: str
    type: AnalysisType
    state: JobState
    progress_percent: int
    parameters: _containers.ScalarMap[str, str]
    summary: AnalysisSummary
    error: str
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    data_as_of_sync_run_id: str
    data_as_of_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., instance_id: _Optional[str] = ..., type: _Optional[_Union[AnalysisType, str]] = ..., state: _Optional[_Union[JobState, str]] = ..., progress_percent: _Optional[int] = ..., parameters: _Optional[_Mapping[str, str]] = ..., summary: _Optional[_Union[AnalysisSummary, _Mapping]] = ..., error: _Optional[str] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data_as_of_sync_run_id: _Optional[str] = ..., data_as_of_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordLink(_message.Message):
    __slots__ = ("table", "sys_id", "display", "url")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    SYS_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    table: str
    sys_id: str
    display: str
    url: str
    def __init__(self, table: _Optional[str] = ..., sys_id: _Optional[str] = ..., display: _Optional[str] = ..., url: _Optional[str] = ...) -> None: ...

class AnalysisResult(_message.Message):
    __slots__ = ("subject", "rollup", "score", "rating", "values", "findings", "sources")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ROLLUP_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RATING_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    subject: RecordLink
    rollup: str
    score: float
    rating: EffectivenessRating
    values: _containers.ScalarMap[str, float]
    findings: _containers.RepeatedScalarFieldContainer[str]
    sources: _containers.RepeatedCompositeFieldContainer[RecordLink]
    def __init__(self, subject: _Optional[_Union[RecordLink, _Mapping]] = ..., rollup: _Optional[str] = ..., score: _Optional[float] = ..., rating: _Optional[_Union[EffectivenessRating, str]] = ..., values: _Optional[_Mapping[str, float]] = ..., findings: _Optional[_Iterable[str]] = ..., sources: _Optional[_Iterable[_Union[RecordLink, _Mapping]]] = ...) -> None: ...

class ListAnalysisResultsRequest(_message.Message):
    __slots__ = ("job_id", "page_size", "page_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    page_size: int
    page_token: str
    def __init__(self, job_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAnalysisResultsResponse(_message.Message):
    __slots__ = ("results", "next_page_token")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[AnalysisResult]
    next_page_token: str
    def __init__(self, results: _Optional[_Iterable[_Union[AnalysisResult, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AnalyzeControlsRequest(_message.Message):
    __slots__ = ("instance_id", "control_ids", "period")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTROL_IDS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    control_ids: _containers.RepeatedScalarFieldContainer[str]
    period: _common_pb2.TimeRange
    def __init__(self, instance_id: _Optional[str] = ..., control_ids: _Optional[_Iterable[str]] = ..., period: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ...) -> None: ...

class AnalyzeRisksRequest(_message.Message):
    __slots__ = ("instance_id", "risk_ids", "min_correlation")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    RISK_IDS_FIELD_NUMBER: _ClassVar[int]
    MIN_CORRELATION_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    risk_ids: _containers.RepeatedScalarFieldContainer[str]
    min_correlation: float
    def __init__(self, instance_id: _Optional[str] = ..., risk_ids: _Optional[_Iterable[str]] = ..., min_correlation: _Optional[float] = ...) -> None: ...

class AnalyzeComplianceRequest(_message.Message):
    __slots__ = ("instance_id", "policy_ids")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_IDS_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    policy_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, instance_id: _Optional[str] = ..., policy_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RunPredictiveAnalysisRequest(_message.Message):
    __slots__ = ("instance_id", "horizon_days", "model_id")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    horizon_days: int
    model_id: str
    def __init__(self, instance_id: _Optional[str] = ..., horizon_days: _Optional[int] = ..., model_id: _Optional[str] = ...) -> None: ...

class DetectAnomaliesRequest(_message.Message):
    __slots__ = ("instance_id", "indicator_ids", "window_days", "threshold")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    INDICATOR_IDS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_DAYS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    indicator_ids: _containers.RepeatedScalarFieldContainer[str]
    window_days: int
    threshold: float
    def __init__(self, instance_id: _Optional[str] = ..., indicator_ids: _Optional[_Iterable[str]] = ..., window_days: _Optional[int] = ..., threshold: _Optional[float] = ...) -> None: ...

class ListAnalysisJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "instance_id", "type", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    instance_id: str
    type: AnalysisType
    state: JobState
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., instance_id: _Optional[str] = ..., type: _Optional[_Union[AnalysisType, str]] = ..., state: _Optional[_Union[JobState, str]] = ...) -> None: ...

class ListAnalysisJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[AnalysisJob]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[AnalysisJob, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetAnalysisJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteAnalysisJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ReplayAnalysisRequest(_message.Message):
    __slots__ = ("instance_id", "types", "sync_run_id")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    SYNC_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    types: _containers.RepeatedScalarFieldContainer[AnalysisType]
    sync_run_id: str
    def __init__(self, instance_id: _Optional[str] = ..., types: _Optional[_Iterable[_Union[AnalysisType, str]]] = ..., sync_run_id: _Optional[str] = ...) -> None: ...

class ReplayAnalysisResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[AnalysisJob]
    def __init__(self, jobs: _Optional[_Iterable[_Union[AnalysisJob, _Mapping]]] = ...) -> None: ...

class IngestRecordsRequest(_message.Message):
    __slots__ = ("header", "records", "present", "reconcile", "missing", "complete")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    RECONCILE_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    header: IngestHeader
    records: RecordBatch
    present: PresentIds
    reconcile: ReconcileTable
    missing: MissingReferences
    complete: CompleteSync
    def __init__(self, header: _Optional[_Union[IngestHeader, _Mapping]] = ..., records: _Optional[_Union[RecordBatch, _Mapping]] = ..., present: _Optional[_Union[PresentIds, _Mapping]] = ..., reconcile: _Optional[_Union[ReconcileTable, _Mapping]] = ..., missing: _Optional[_Union[MissingReferences, _Mapping]] = ..., complete: _Optional[_Union[CompleteSync, _Mapping]] = ...) -> None: ...

class CompleteSync(_message.Message):
    __slots__ = ("data_as_of",)
    DATA_AS_OF_FIELD_NUMBER: _ClassVar[int]
    data_as_of: str
    def __init__(self, data_as_of: _Optional[str] = ...) -> None: ...

class IngestHeader(_message.Message):
    __slots__ = ("organization_id", "instance_id", "sync_run_id", "instance_url", "instance_name")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    SYNC_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_URL_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_NAME_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    instance_id: str
    sync_run_id: str
    instance_url: str
    instance_name: str
    def __init__(self, organization_id: _Optional[str] = ..., instance_id: _Optional[str] = ..., sync_run_id: _Optional[str] = ..., instance_url: _Optional[str] = ..., instance_name: _Optional[str] = ...) -> None: ...

class GrcRecord(_message.Message):
    __slots__ = ("table", "sys_id", "updated_on", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TABLE_FIELD_NUMBER: _ClassVar[int]
    SYS_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATED_ON_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    table: str
    sys_id: str
    updated_on: str
    fields: _containers.ScalarMap[str, str]
    def __init__(self, table: _Optional[str] = ..., sys_id: _Optional[str] = ..., updated_on: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RecordBatch(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[GrcRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[GrcRecord, _Mapping]]] = ...) -> None: ...

class PresentIds(_message.Message):
    __slots__ = ("table", "sys_ids")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    SYS_IDS_FIELD_NUMBER: _ClassVar[int]
    table: str
    sys_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, table: _Optional[str] = ..., sys_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ReconcileTable(_message.Message):
    __slots__ = ("table", "as_of", "after_sys_id", "through_sys_id")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    AFTER_SYS_ID_FIELD_NUMBER: _ClassVar[int]
    THROUGH_SYS_ID_FIELD_NUMBER: _ClassVar[int]
    table: str
    as_of: str
    after_sys_id: str
    through_sys_id: str
    def __init__(self, table: _Optional[str] = ..., as_of: _Optional[str] = ..., after_sys_id: _Optional[str] = ..., through_sys_id: _Optional[str] = ...) -> None: ...

class MissingReferences(_message.Message):
    __slots__ = ("target_table",)
    TARGET_TABLE_FIELD_NUMBER: _ClassVar[int]
    target_table: str
    def __init__(self, target_table: _Optional[str] = ...) -> None: ...

class IngestRecordsResponse(_message.Message):
    __slots__ = ("tables", "missing_sys_ids")
    TABLES_FIELD_NUMBER: _ClassVar[int]
    MISSING_SYS_IDS_FIELD_NUMBER: _ClassVar[int]
    tables: _containers.RepeatedCompositeFieldContainer[TableIngestStats]
    missing_sys_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tables: _Optional[_Iterable[_Union[TableIngestStats, _Mapping]]] = ..., missing_sys_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class TableIngestStats(_message.Message):
    __slots__ = ("table", "received", "created", "updated", "unchanged", "skipped", "deleted")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    table: str
    received: int
    created: int
    updated: int
    unchanged: int
    skipped: int
    deleted: int
    def __init__(self, table: _Optional[str] = ..., received: _Optional[int] = ..., created: _Optional[int] = ..., updated: _Optional[int] = ..., unchanged: _Optional[int] = ..., skipped: _Optional[int] = ..., deleted: _Optional[int] = ...) -> None: ...
