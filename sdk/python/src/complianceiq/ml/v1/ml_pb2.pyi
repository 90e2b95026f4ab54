import datetime

from complianceiq.analysis.v1 import analysis_pb2 as _analysis_pb2
from complianceiq.common.v1 import access_pb2 as _access_pb2
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

class ModelKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_KIND_UNSPECIFIED: _ClassVar[ModelKind]
    MODEL_KIND_CONTROL_FAILURE: _ClassVar[ModelKind]
    MODEL_KIND_RISK_FORECAST: _ClassVar[ModelKind]
    MODEL_KIND_ANOMALY_DETECTION: _ClassVar[ModelKind]
    MODEL_KIND_REGULATORY_NLP: _ClassVar[ModelKind]

class ModelState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_STATE_UNSPECIFIED: _ClassVar[ModelState]
    MODEL_STATE_TRAINING: _ClassVar[ModelState]
    MODEL_STATE_READY: _ClassVar[ModelState]
    MODEL_STATE_FAILED: _ClassVar[ModelState]
    MODEL_STATE_ARCHIVED: _ClassVar[ModelState]
    MODEL_STATE_CANCELLED: _ClassVar[ModelState]
MODEL_KIND_UNSPECIFIED: ModelKind
MODEL_KIND_CONTROL_FAILURE: ModelKind
MODEL_KIND_RISK_FORECAST: ModelKind
MODEL_KIND_ANOMALY_DETECTION: ModelKind
MODEL_KIND_REGULATORY_NLP: ModelKind
MODEL_STATE_UNSPECIFIED: ModelState
MODEL_STATE_TRAINING: ModelState
MODEL_STATE_READY: ModelState
MODEL_STATE_FAILED: ModelState
MODEL_STATE_ARCHIVED: ModelState
MODEL_STATE_CANCELLED: ModelState

class Model(_message.Message):
    __slots__ = ("id", "organization_id", "name", "version", "kind", "state", "instance_id", "parameters", "metrics", "training_examples", "artifact_uri", "error", "create_time", "train_end_time", "data_as_of", "features", "code_version", "is_default", "progress_percent")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TRAINING_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_URI_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TRAIN_END_TIME_FIELD_NUMBER: _ClassVar[int]
    DATA_AS_OF_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    CODE_VERSION_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_PERCENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    name: str
    version: int
    kind: ModelKind
    state: ModelState
    instance_id: str
    parameters: _containers.ScalarMap[str, str]
    metrics: _containers.ScalarMap[str, float]
    training_examples: int
    artifact_uri: str
    error: str
    create_time: _timestamp_pb2.Timestamp
    train_end_time: _timestamp_pb2.Timestamp
    data_as_of: str
    features: _containers.RepeatedScalarFieldContainer[str]
    code_version: str
    is_default: bool
    progress_percent: int
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., kind: _Optional[_Union[ModelKind, str]] = ..., state: _Optional[_Union[ModelState, str]] = ..., instance_id: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., training_examples: _Optional[int] = ..., artifact_uri: _Optional[str] = ..., error: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., train_end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., data_as_of: _Optional[str] = ..., features: _Optional[_Iterable[str]] = ..., code_version: _Optional[str] = ..., is_default: _Optional[bool] = ..., progress_percent: _Optional[int] = ...) -> None: ...

class TrainModelRequest(_message.Message):
    __slots__ = ("name", "kind", "instance_id", "parameters")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: ModelKind
    instance_id: str
    parameters: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[ModelKind, str]] = ..., instance_id: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "kind", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    kind: ModelKind
    state: ModelState
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., kind: _Optional[_Union[ModelKind, str]] = ..., state: _Optional[_Union[ModelState, str]] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("record_id", "value", "lower_bound", "upper_bound", "target_time", "feature_contributions")
    class FeatureContributionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LOWER_BOUND_FIELD_NUMBER: _ClassVar[int]
    UPPER_BOUND_FIELD_NUMBER: _ClassVar[int]
    TARGET_TIME_FIELD_NUMBER: _ClassVar[int]
    FEATURE_CONTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    value: float
    lower_bound: float
    upper_bound: float
    target_time: _timestamp_pb2.Timestamp
    feature_contributions: _containers.ScalarMap[str, float]
    def __init__(self, record_id: _Optional[str] = ..., value: _Optional[float] = ..., lower_bound: _Optional[float] = ..., upper_bound: _Optional[float] = ..., target_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., feature_contributions: _Optional[_Mapping[str, float]] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("model_id", "record_ids", "horizon_days")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_IDS_FIELD_NUMBER: _ClassVar[int]
    HORIZON_DAYS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    record_ids: _containers.RepeatedScalarFieldContainer[str]
    horizon_days: int
    def __init__(self, model_id: _Optional[str] = ..., record_ids: _Optional[_Iterable[str]] = ..., horizon_days: _Optional[int] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("model_id", "predictions")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    predictions: _containers.RepeatedCompositeFieldContainer[Prediction]
    def __init__(self, model_id: _Optional[str] = ..., predictions: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ...) -> None: ...

class EvaluateModelRequest(_message.Message):
    __slots__ = ("model_id", "instance_id", "holdout_fraction", "window_days", "threshold")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    HOLDOUT_FRACTION_FIELD_NUMBER: _ClassVar[int]
    WINDOW_DAYS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    instance_id: str
    holdout_fraction: float
    window_days: int
    threshold: float
    def __init__(self, model_id: _Optional[str] = ..., instance_id: _Optional[str] = ..., holdout_fraction: _Optional[float] = ..., window_days: _Optional[int] = ..., threshold: _Optional[float] = ...) -> None: ...

class CalibrationBin(_message.Message):
    __slots__ = ("lower", "upper", "count", "mean_predicted", "observed_rate")
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_PREDICTED_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_RATE_FIELD_NUMBER: _ClassVar[int]
    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed_rate: float
    def __init__(self, lower: _Optional[float] = ..., upper: _Optional[float] = ..., count: _Optional[int] = ..., mean_predicted: _Optional[float] = ..., observed_rate: _Optional[float] = ...) -> None: ...

class Evaluation(_message.Message):
    __slots__ = ("model_id", "metrics", "example_count", "evaluate_time", "calibration", "threshold", "window_start_time", "overlaps_training")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    EVALUATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_TIME_FIELD_NUMBER: _ClassVar[int]
    OVERLAPS_TRAINING_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    metrics: _containers.ScalarMap[str, float]
    example_count: int
    evaluate_time: _timestamp_pb2.Timestamp
    calibration: _containers.RepeatedCompositeFieldContainer[CalibrationBin]
    threshold: float
    window_start_time: _timestamp_pb2.Timestamp
    overlaps_training: bool
    def __init__(self, model_id: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., example_count: _Optional[int] = ..., evaluate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., calibration: _Optional[_Iterable[_Union[CalibrationBin, _Mapping]]] = ..., threshold: _Optional[float] = ..., window_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., overlaps_training: _Optional[bool] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class CancelTrainingRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class SetDefaultModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class ScoreControlsRequest(_message.Message):
    __slots__ = ("organization_id", "instance_id", "model_id", "data_as_of")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_AS_OF_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    instance_id: str
    model_id: str
    data_as_of: str
    def __init__(self, organization_id: _Optional[str] = ..., instance_id: _Optional[str] = ..., model_id: _Optional[str] = ..., data_as_of: _Optional[str] = ...) -> None: ...

class ScoreControlsResponse(_message.Message):
    __slots__ = ("model", "predictions")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    model: Model
    predictions: _containers.RepeatedCompositeFieldContainer[Prediction]
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ..., predictions: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ...) -> None: ...

class ScanRegulationRequest(_message.Message):
    __slots__ = ("instance_id", "text", "min_score", "max_matches", "pdf", "document_id")
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MAX_MATCHES_FIELD_NUMBER: _ClassVar[int]
    PDF_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    instance_id: str
    text: str
    min_score: float
    max_matches: int
    pdf: bytes
    document_id: str
    def __init__(self, instance_id: _Optional[str] = ..., text: _Optional[str] = ..., min_score: _Optional[float] = ..., max_matches: _Optional[int] = ..., pdf: _Optional[bytes] = ..., document_id: _Optional[str] = ...) -> None: ...

class CreateDocumentUploadRequest(_message.Message):
    __slots__ = ("file_name", "content_type")
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    content_type: str
    def __init__(self, file_name: _Optional[str] = ..., content_type: _Optional[str] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("id", "organization_id", "file_name", "content_type", "create_time", "expire_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    file_name: str
    content_type: str
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., file_name: _Optional[str] = ..., content_type: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DocumentUpload(_message.Message):
    __slots__ = ("document", "upload_uri", "upload_expire_time", "max_bytes")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_URI_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    document: Document
    upload_uri: str
    upload_expire_time: _timestamp_pb2.Timestamp
    max_bytes: int
    def __init__(self, document: _Optional[_Union[Document, _Mapping]] = ..., upload_uri: _Optional[str] = ..., upload_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class UploadDocumentRequest(_message.Message):
    __slots__ = ("document_id", "organization_id", "expires", "signature", "content")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    organization_id: str
    expires: int
    signature: str
    content: _httpbody_pb2.HttpBody
    def __init__(self, document_id: _Optional[str] = ..., organization_id: _Optional[str] = ..., expires: _Optional[int] = ..., signature: _Optional[str] = ..., content: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class ClauseMatch(_message.Message):
    __slots__ = ("requirement", "score", "terms", "controls")
    REQUIREMENT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    CONTROLS_FIELD_NUMBER: _ClassVar[int]
    requirement: _analysis_pb2.RecordLink
    score: float
    terms: _containers.RepeatedScalarFieldContainer[str]
    controls: _containers.RepeatedCompositeFieldContainer[_analysis_pb2.RecordLink]
    def __init__(self, requirement: _Optional[_Union[_analysis_pb2.RecordLink, _Mapping]] = ..., score: _Optional[float] = ..., terms: _Optional[_Iterable[str]] = ..., controls: _Optional[_Iterable[_Union[_analysis_pb2.RecordLink, _Mapping]]] = ...) -> None: ...

class Clause(_message.Message):
    __slots__ = ("index", "reference", "text", "matches", "possible_gap")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    POSSIBLE_GAP_FIELD_NUMBER: _ClassVar[int]
    index: int
    reference: str
    text: str
    matches: _containers.RepeatedCompositeFieldContainer[ClauseMatch]
    possible_gap: bool
    def __init__(self, index: _Optional[int] = ..., reference: _Optional[str] = ..., text: _Optional[str] = ..., matches: _Optional[_Iterable[_Union[ClauseMatch, _Mapping]]] = ..., possible_gap: _Optional[bool] = ...) -> None: ...

class ScanRegulationResponse(_message.Message):
    __slots__ = ("clauses", "possible_gaps", "requirements_compared", "data_as_of")
    CLAUSES_FIELD_NUMBER: _ClassVar[int]
    POSSIBLE_GAPS_FIELD_NUMBER: _ClassVar[int]
    REQUIREMENTS_COMPARED_FIELD_NUMBER: _ClassVar[int]
    DATA_AS_OF_FIELD_NUMBER: _ClassVar[int]
    clauses: _containers.RepeatedCompositeFieldContainer[Clause]
    possible_gaps: int
    requirements_compared: int
    data_as_of: str
    def __init__(self, clauses: _Optional[_Iterable[_Union[Clause, _Mapping]]] = ..., possible_gaps: _Optional[int] = ..., requirements_compared: _Optional[int] = ..., data_as_of: _Optional[str] = ...) -> None: ...
