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

class WidgetType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WIDGET_TYPE_UNSPECIFIED: _ClassVar[WidgetType]
    WIDGET_TYPE_SCORECARD: _ClassVar[WidgetType]
    WIDGET_TYPE_CHART: _ClassVar[WidgetType]
    WIDGET_TYPE_TABLE: _ClassVar[WidgetType]
    WIDGET_TYPE_HEATMAP: _ClassVar[WidgetType]
    WIDGET_TYPE_INSIGHT_LIST: _ClassVar[WidgetType]

class WidgetState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WIDGET_STATE_UNSPECIFIED: _ClassVar[WidgetState]
    WIDGET_STATE_DRAFT: _ClassVar[WidgetState]
    WIDGET_STATE_DEPLOYED: _ClassVar[WidgetState]
    WIDGET_STATE_DEPLOY_FAILED: _ClassVar[WidgetState]

class DeploymentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEPLOYMENT_STATE_UNSPECIFIED: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_PENDING: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_SUCCEEDED: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_FAILED: _ClassVar[DeploymentState]

class DeploymentAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEPLOYMENT_ACTION_UNSPECIFIED: _ClassVar[DeploymentAction]
    DEPLOYMENT_ACTION_CREATED: _ClassVar[DeploymentAction]
    DEPLOYMENT_ACTION_UPDATED: _ClassVar[DeploymentAction]
    DEPLOYMENT_ACTION_UNCHANGED: _ClassVar[DeploymentAction]
    DEPLOYMENT_ACTION_REMOVED: _ClassVar[DeploymentAction]
WIDGET_TYPE_UNSPECIFIED: WidgetType
WIDGET_TYPE_SCORECARD: WidgetType
WIDGET_TYPE_CHART: WidgetType
WIDGET_TYPE_TABLE: WidgetType
WIDGET_TYPE_HEATMAP: WidgetType
WIDGET_TYPE_INSIGHT_LIST: WidgetType
WIDGET_STATE_UNSPECIFIED: WidgetState
WIDGET_STATE_DRAFT: WidgetState
WIDGET_STATE_DEPLOYED: WidgetState
WIDGET_STATE_DEPLOY_FAILED: WidgetState
DEPLOYMENT_STATE_UNSPECIFIED: DeploymentState
DEPLOYMENT_STATE_PENDING: DeploymentState
DEPLOYMENT_STATE_SUCCEEDED: DeploymentState
DEPLOYMENT_STATE_FAILED: DeploymentState
DEPLOYMENT_ACTION_UNSPECIFIED: DeploymentAction
DEPLOYMENT_ACTION_CREATED: DeploymentAction
DEPLOYMENT_ACTION_UPDATED: DeploymentAction
DEPLOYMENT_ACTION_UNCHANGED: DeploymentAction
DEPLOYMENT_ACTION_REMOVED: DeploymentAction

class WidgetConfig(_message.Message):
    __slots__ = ("data_source", "refresh_interval_seconds", "filters", "options")
    class FiltersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DATA_SOURCE_FIELD_NUMBER: _ClassVar[int]
    REFRESH_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    data_source: str
    refresh_interval_seconds: int
    filters: _containers.ScalarMap[str, str]
    options: _containers.ScalarMap[str, str]
    def __init__(self, data_source: _Optional[str] = ..., refresh_interval_seconds: _Optional[int] = ..., filters: _Optional[_Mapping[str, str]] = ..., options: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Widget(_message.Message):
    __slots__ = ("id", "organization_id", "name", "description", "type", "template_id", "config", "version", "state", "create_time", "update_time", "etag")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    name: str
    description: str
    type: WidgetType
    template_id: str
    config: WidgetConfig
    version: int
    state: WidgetState
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., type: _Optional[_Union[WidgetType, str]] = ..., template_id: _Optional[str] = ..., config: _Optional[_Union[WidgetConfig, _Mapping]] = ..., version: _Optional[int] = ..., state: _Optional[_Union[WidgetState, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class WidgetDeployment(_message.Message):
    __slots__ = ("id", "organization_id", "widget_id", "widget_version", "instance_id", "state", "servicenow_sys_id", "error", "deployed_by", "create_time", "action")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    WIDGET_ID_FIELD_NUMBER: _ClassVar[int]
    WIDGET_VERSION_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SERVICENOW_SYS_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DEPLOYED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    widget_id: str
    widget_version: int
    instance_id: str
    state: DeploymentState
    servicenow_sys_id: str
    error: str
    deployed_by: str
    create_time: _timestamp_pb2.Timestamp
    action: DeploymentAction
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., widget_id: _Optional[str] = ..., widget_version: _Optional[int] = ..., instance_id: _Optional[str] = ..., state: _Optional[_Union[DeploymentState, str]] = ..., servicenow_sys_id: _Optional[str] = ..., error: _Optional[str] = ..., deployed_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., action: _Optional[_Union[DeploymentAction, str]] = ...) -> None: ...

class WidgetVersion(_message.Message):
    __slots__ = ("version", "widget", "created_by", "create_time")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WIDGET_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    version: int
    widget: Widget
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., widget: _Optional[_Union[Widget, _Mapping]] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WidgetTemplate(_message.Message):
    __slots__ = ("id", "organization_id", "name", "description", "type", "default_config", "built_in", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_CONFIG_FIELD_NUMBER: _ClassVar[int]
    BUILT_IN_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    organization_id: str
    name: str
    description: str
    type: WidgetType
    default_config: WidgetConfig
    built_in: bool
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., type: _Optional[_Union[WidgetType, str]] = ..., default_config: _Optional[_Union[WidgetConfig, _Mapping]] = ..., built_in: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateWidgetRequest(_message.Message):
    __slots__ = ("widget",)
    WIDGET_FIELD_NUMBER: _ClassVar[int]
    widget: Widget
    def __init__(self, widget: _Optional[_Union[Widget, _Mapping]] = ...) -> None: ...

class ListWidgetsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "type")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    type: WidgetType
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., type: _Optional[_Union[WidgetType, str]] = ...) -> None: ...

class ListWidgetsResponse(_message.Message):
    __slots__ = ("widgets", "next_page_token")
    WIDGETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    widgets: _containers.RepeatedCompositeFieldContainer[Widget]
    next_page_token: str
    def __init__(self, widgets: _Optional[_Iterable[_Union[Widget, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetWidgetRequest(_message.Message):
    __slots__ = ("widget_id",)
    WIDGET_ID_FIELD_NUMBER: _ClassVar[int]
    widget_id: str
    def __init__(self, widget_id: _Optional[str] = ...) -> None: ...

class UpdateWidgetRequest(_message.Message):
    __slots__ = ("widget_id", "widget", "update_mask")
    WIDGET_ID_FIELD_NUMBER: _ClassVar[int]
    WIDGET_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    widget_id: str
    widget: Widget
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, widget_id: _Optional[str] = ..., widget: _Optional[_Union[Widget, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteWidgetRequest(_message.Message):
    __slots__ = ("widget_id", "etag")
    WIDGET_ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    widget_id: str
    etag: str
    def __init__(self, widget_id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class DeployWidgetRequest(_message.Message):
    __slots__ = ("widget_id", "instance_id", "version")
    WIDGET_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    widget_id: str
    instance_id: str
    version: int
    def __init__(self, widget_id: _Optional[str] = ..., instance_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ListWidgetTemplatesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "type")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    type: WidgetType
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., type: _Optional[_Union[WidgetType, str]] = ...) -> None: ...

class ListWidgetTemplatesResponse(_message.Message):
    __slots__ = ("templates", "next_page_token")
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[WidgetTemplate]
    next_page_token: str
    def __init__(self, templates: _Optional[_Iterable[_Union[WidgetTemplate, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateWidgetTemplateRequest(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: WidgetTemplate
    def __init__(self, template: _Optional[_Union[WidgetTemplate, _Mapping]] = ...) -> None: ...

class ListWidgetVersionsRequest(_message.Message):
    __slots__ = ("widget_id", "page_size", "page_token")
    WIDGET_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    widget_id: str
    page_size: int
    page_token: str
    def __init__(self, widget_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWidgetVersionsResponse(_message.Message):
    __slots__ = ("versions", "next_page_token")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[WidgetVersion]
    next_page_token: str
    def __init__(self, versions: _Optional[_Iterable[_Union[WidgetVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListWidgetDeploymentsRequest(_message.Message):
    __slots__ = ("widget_id", "page_size", "page_token")
    WIDGET_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    widget_id: str
    page_size: int
    page_token: str
    def __init__(self, widget_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWidgetDeploymentsResponse(_message.Message):
    __slots__ = ("deployments", "next_page_token")
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[WidgetDeployment]
    next_page_token: str
    def __init__(self, deployments: _Optional[_Iterable[_Union[WidgetDeployment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
