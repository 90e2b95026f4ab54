from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor
ACCESS_FIELD_NUMBER: _ClassVar[int]
access: _descriptor.FieldDescriptor
BROWSER_REDIRECT_FIELD_NUMBER: _ClassVar[int]
browser_redirect: _descriptor.FieldDescriptor

class Access(_message.Message):
    __slots__ = ("public", "permission", "allow_unscoped", "internal", "staff", "open_to_staff")
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    ALLOW_UNSCOPED_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_FIELD_NUMBER: _ClassVar[int]
    STAFF_FIELD_NUMBER: _ClassVar[int]
    OPEN_TO_STAFF_FIELD_NUMBER: _ClassVar[int]
    public: bool
    permission: str
    allow_unscoped: bool
    internal: bool
    staff: bool
    open_to_staff: bool
    def __init__(self, public: _Optional[bool] = ..., permission: _Optional[str] = ..., allow_unscoped: _Optional[bool] = ..., internal: _Optional[bool] = ..., staff: _Optional[bool] = ..., open_to_staff: _Optional[bool] = ...) -> None: ...
