"""ComplianceIQ client SDK for Python.

The generated messages and stubs of every service live in the ``complianceiq`` package
(``complianceiq.user.v1.user_pb2``, ``..._pb2_grpc``); this module adds what every caller
would otherwise write by hand:

- ``Credentials``: a person's session refreshed before it expires and once more when the
  platform refuses the token (the single-use refresh token rotates), an organization API key
  exchanged for its minute-long token, or a fixed token;
- ``Client.call``: retries UNAVAILABLE and RESOURCE_EXHAUSTED with exponential backoff and
  jitter, or as long as the platform's ``google.rpc.RetryInfo`` asks;
- ``Client.pages`` / ``Client.items``: any list RPC as an iterator, following
  ``next_page_token``;
- ``Error``: the status with its ``google.rpc`` details decoded.

    client = Client("127.0.0.1:8080", credentials=Credentials.api_key(secret))
    users = client.stub(user_pb2_grpc.UserServiceStub)
    me = client.call(users.GetCurrentUser, user_pb2.GetCurrentUserRequest())
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from typing import Any, Callable, Iterator, Optional

import grpc
from google.rpc import error_details_pb2, status_pb2

from complianceiq.auth.v1 import auth_pb2, auth_pb2_grpc

__all__ = ["Client", "Credentials", "Error", "FieldViolation", "RetryPolicy"]

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


@dataclasses.dataclass(frozen=True)
class FieldViolation:
    field: str
    reason: str
    description: str


class Error(Exception):
    """A failed call: the gRPC code and message with the ``google.rpc`` details decoded."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        #: ``google.rpc.ErrorInfo.reason``: what to branch on.
        self.reason: Optional[str] = None
        #: ``google.rpc.BadRequest``: each field at fault.
        self.field_violations: list[FieldViolation] = []
        #: ``google.rpc.RetryInfo``: seconds the platform asks the caller to wait.
        self.retry_after: Optional[float] = None
        #: ``google.rpc.ResourceInfo``: (type, name) of the resource at issue.
        self.resource: Optional[tuple[str, str]] = None

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "Error":
        found = cls(error.code(), error.details() or "")
        for key, value in error.trailing_metadata() or ():
            if key != "grpc-status-details-bin":
                continue
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    found.reason = info.reason
                elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    request = error_details_pb2.BadRequest()
                    detail.Unpack(request)
                    found.field_violations = [
                        FieldViolation(v.field, v.reason, v.description) for v in request.field_violations
                    ]
                elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    info = error_details_pb2.RetryInfo()
                    detail.Unpack(info)
                    found.retry_after = info.retry_delay.seconds + info.retry_delay.nanos / 1e9
                elif detail.Is(error_details_pb2.ResourceInfo.DESCRIPTOR):
                    info = error_details_pb2.ResourceInfo()
                    detail.Unpack(info)
                    found.resource = (info.resource_type, info.resource_name)
        return found

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE


@dataclasses.dataclass
class RetryPolicy:
    """Attempts in all (the first included), the backoff, and the longest RetryInfo honoured."""

    max_attempts: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    multiplier: float = 2.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, error: Error) -> Optional[float]:
        """Seconds to wait before attempt ``attempt + 1``; None when no retry is due."""
        if not error.retryable or attempt >= self.max_attempts:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_retry_after else None
        backoff = min(self.initial_backoff * self.multiplier ** (attempt - 1), self.max_backoff)
        # Half fixed, half random, so callers throttled together spread out.
        return backoff / 2 + random.uniform(0, backoff / 2)


class Credentials:
    """How a client proves who it is. Use the constructors below."""

    RENEW_BEFORE = 10.0

    def __init__(self, kind: str, secret: str = "", refresh_token: str = "", expires_in: float = 0.0,
                 organization_id: str = ""):
        self.kind = kind
        self._secret = secret
        self._refresh_token = refresh_token
        self._organization_id = organization_id
        self._token = secret if kind in ("token", "session") else ""
        self._renew_at: Optional[float] = None
        if kind == "session" and expires_in:
            self._renew_at = self._renew_time(expires_in)
        elif kind == "api_key":
            self._renew_at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # secrets never reach a log through repr
        return f"Credentials({self.kind})"

    @classmethod
    def none(cls) -> "Credentials":
        return cls("none")

    @classmethod
    def token(cls, access_token: str) -> "Credentials":
        """A token used as given; once expired, calls fail UNAUTHENTICATED."""
        return cls("token", access_token)

    @classmethod
    def session(cls, tokens: auth_pb2.TokenPair) -> "Credentials":
        """A person's session from Login or Refresh, refreshed as needed."""
        return cls("session", tokens.access_token, tokens.refresh_token, float(tokens.expires_in),
                   tokens.organization_id)

    @classmethod
    def api_key(cls, secret: str) -> "Credentials":
        """An organization API key, exchanged for short access tokens."""
        return cls("api_key", secret)

    def _renew_time(self, lifetime: float) -> float:
        return time.monotonic() + lifetime - min(self.RENEW_BEFORE, lifetime / 5)

    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self._token}")] if self._token else []

    def renew(self, channel: grpc.Channel, force: bool = False) -> bool:
        """Renews the token if due (or ``force``d after a refusal); whether one was obtained."""
        with self._lock:
            due = self._renew_at is not None and time.monotonic() >= self._renew_at
            if not (due or force):
                return False
            auth = auth_pb2_grpc.AuthServiceStub(channel)
            try:
                if self.kind == "session":
                    tokens = auth.Refresh(auth_pb2.RefreshRequest(
                        refresh_token=self._refresh_token, organization_id=self._organization_id))
                    self._token, self._refresh_token = tokens.access_token, tokens.refresh_token
                    self._renew_at = self._renew_time(tokens.expires_in) if tokens.expires_in else None
                    return True
                if self.kind == "api_key":
                    exchanged = auth.ExchangeApiKey(auth_pb2.ExchangeApiKeyRequest(secret=self._secret))
                    self._token = exchanged.access_token
                    self._renew_at = self._renew_time(exchanged.expires_in)
                    return True
            except grpc.RpcError as error:
                raise Error.from_rpc_error(error) from None
            return False


class Client:
    """A channel to the platform's gRPC edge with credentials and a retry policy.

    ``target`` is ``host:port``; ``secure`` uses TLS with the system's roots (or
    ``root_certificates``).
    """

    def __init__(self, target: str, credentials: Optional[Credentials] = None, secure: bool = False,
                 root_certificates: Optional[bytes] = None, retry: Optional[RetryPolicy] = None,
                 timeout: Optional[float] = 30.0, channel: Optional[grpc.Channel] = None):
        if channel is None:
            if secure:
                channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates))
            else:
                channel = grpc.insecure_channel(target)
        self.channel = channel
        self.credentials = credentials or Credentials.none()
        self.retry = retry or RetryPolicy()
        self.timeout = timeout

    def with_credentials(self, credentials: Credentials) -> "Client":
        """The same channel with other credentials (after a login, or as an API key)."""
        return Client("", credentials, retry=self.retry, timeout=self.timeout, channel=self.channel)

    def stub(self, stub_class: Callable[[grpc.Channel], Any]) -> Any:
        """A generated stub on this client's channel, e.g. ``client.stub(UserServiceStub)``."""
        return stub_class(self.channel)

    def call(self, method: Callable[..., Any], request: Any) -> Any:
        """Calls ``method`` (a stub's method) with the token, renewing it and retrying as needed."""
        renewed = False
        attempt = 0
        while True:
            attempt += 1
            self.credentials.renew(self.channel)
            try:
                return method(request, metadata=self.credentials.metadata(), timeout=self.timeout)
            except grpc.RpcError as raw:
                error = Error.from_rpc_error(raw)
            if error.code == grpc.StatusCode.UNAUTHENTICATED and not renewed:
                renewed = True
                if self.credentials.renew(self.channel, force=True):
                    attempt -= 1
                    continue
            wait = self.retry.delay(attempt, error)
            if wait is None:
                raise error
            time.sleep(wait)

    def pages(self, method: Callable[..., Any], request: Any) -> Iterator[Any]:
        """Every page of a list RPC from ``request``'s page on, fetched as iterated."""
        request = type(request).FromString(request.SerializeToString())
        while True:
            page = self.call(method, request)
            yield page
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    def items(self, method: Callable[..., Any], request: Any) -> Iterator[Any]:
        """Every item of every page (the response's repeated field of messages)."""
        for page in self.pages(method, request):
            field = next(f for f in page.DESCRIPTOR.fields if f.is_repeated and f.message_type)
            yield from getattr(page, field.name)
