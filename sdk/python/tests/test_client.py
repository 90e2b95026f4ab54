"""The client against an in-process server that pages, throttles and takes only fresh tokens."""

import threading
import time
import unittest
from concurrent import futures

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from complianceiq.auth.v1 import auth_pb2, auth_pb2_grpc
from complianceiq.user.v1 import user_pb2, user_pb2_grpc
from complianceiq_sdk import Client, Credentials, Error, RetryPolicy

USERS = 5


def abort(context, code, reason, retry_after=None, violations=()):
    """Ends the call as the platform does: the status with ErrorInfo (and RetryInfo, BadRequest)."""
    details = []
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="complianceiq.io"))
    details.append(info)
    if retry_after is not None:
        retry = any_pb2.Any()
        delay = duration_pb2.Duration(seconds=int(retry_after), nanos=int(retry_after % 1 * 1e9))
        retry.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        details.append(retry)
    if violations:
        bad = any_pb2.Any()
        bad.Pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, reason=r, description=d) for f, r, d in violations
        ]))
        details.append(bad)
    status = status_pb2.Status(code=code.value[0], message=f"{reason} from the test server", details=details)
    context.abort_with_status(_Status(code, status))


class _Status(grpc.Status):
    def __init__(self, code, status):
        self.code = code
        self.details = status.message
        self.trailing_metadata = (("grpc-status-details-bin", status.SerializeToString()),)


class Server(user_pb2_grpc.UserServiceServicer, auth_pb2_grpc.AuthServiceServicer):
    def __init__(self):
        self.lock = threading.Lock()
        self.calls = []  # (monotonic time, token) per GetCurrentUser
        self.page_tokens = []
        self.refreshes = []
        self.exchanges = 0
        self.failures = []  # (code, reason, retry_after, violations) answered before success
        self.valid_token = ""
        self.revoked = False

    def GetCurrentUser(self, request, context):
        token = dict(context.invocation_metadata()).get("authorization", "").removeprefix("Bearer ")
        with self.lock:
            self.calls.append((time.monotonic(), token))
            if token != self.valid_token:
                abort(context, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")
            if self.failures:
                code, reason, retry_after, violations = self.failures.pop(0)
                abort(context, code, reason, retry_after, violations)
        return user_pb2.User(id="me", email="me@example.com")

    def ListUsers(self, request, context):
        with self.lock:
            self.page_tokens.append(request.page_token)
        if request.page_token and not request.page_token.startswith("from-"):
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
        start = int(request.page_token.removeprefix("from-")) if request.page_token else 0
        end = min(start + max(request.page_size, 1), USERS)
        return user_pb2.ListUsersResponse(
            users=[user_pb2.User(id=f"user-{n}") for n in range(start, end)],
            next_page_token=f"from-{end}" if end < USERS else "",
            total_size=USERS,
        )

    def Refresh(self, request, context):
        with self.lock:
            self.refreshes.append(request)
            if self.revoked:
                abort(context, grpc.StatusCode.UNAUTHENTICATED, "SESSION_REVOKED")
            generation = len(self.refreshes)
            self.valid_token = f"access-{generation}"
        return auth_pb2.TokenPair(access_token=self.valid_token, refresh_token=f"refresh-{generation}",
                                  token_type="Bearer", expires_in=900)

    def ExchangeApiKey(self, request, context):
        if request.secret != "ciq_key_secret":
            abort(context, grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID")
        with self.lock:
            self.exchanges += 1
            self.valid_token = f"key-token-{self.exchanges}"
        return auth_pb2.ExchangeApiKeyResponse(access_token=self.valid_token, expires_in=60)


FAST = RetryPolicy(initial_backoff=0.005, max_backoff=0.02)


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.server = Server()
        self.grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        user_pb2_grpc.add_UserServiceServicer_to_server(self.server, self.grpc_server)
        auth_pb2_grpc.add_AuthServiceServicer_to_server(self.server, self.grpc_server)
        port = self.grpc_server.add_insecure_port("127.0.0.1:0")
        self.grpc_server.start()
        self.target = f"127.0.0.1:{port}"

    def tearDown(self):
        self.grpc_server.stop(None)

    def client(self, credentials=None, retry=FAST):
        return Client(self.target, credentials=credentials, retry=retry, timeout=10)

    def me(self, client):
        return client.call(client.stub(user_pb2_grpc.UserServiceStub).GetCurrentUser,
                           user_pb2.GetCurrentUserRequest())

    def test_pages_follow_the_next_page_token_to_the_end(self):
        client = self.client()
        list_users = client.stub(user_pb2_grpc.UserServiceStub).ListUsers
        request = user_pb2.ListUsersRequest(page_size=2)
        self.assertEqual([len(page.users) for page in client.pages(list_users, request)], [2, 2, 1])
        self.assertEqual(self.server.page_tokens, ["", "from-2", "from-4"])
        self.assertEqual([user.id for user in client.items(list_users, request)],
                         [f"user-{n}" for n in range(USERS)])
        self.assertEqual(request.page_token, "", "the caller's request is left as it was")
        with self.assertRaises(Error) as refused:
            list(client.pages(list_users, user_pb2.ListUsersRequest(page_token="forged")))
        self.assertEqual(refused.exception.code, grpc.StatusCode.INVALID_ARGUMENT)

    def test_throttled_calls_wait_as_long_as_retry_info_asks_then_succeed(self):
        self.server.valid_token = "fixed"
        self.server.failures = [
            (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED", 0.3, ()),
            (grpc.StatusCode.UNAVAILABLE, "MODULE_UNAVAILABLE", None, ()),
        ]
        user = self.me(self.client(Credentials.token("fixed")))
        self.assertEqual(user.email, "me@example.com")
        self.assertEqual(len(self.server.calls), 3)
        waited = self.server.calls[1][0] - self.server.calls[0][0]
        self.assertGreaterEqual(waited, 0.3, "RetryInfo asked for 300 ms")

    def test_retries_stop_at_the_policy_and_other_errors_are_not_retried(self):
        self.server.valid_token = "fixed"
        self.server.failures = [(grpc.StatusCode.UNAVAILABLE, "MODULE_UNAVAILABLE", None, ())] * 10
        client = self.client(Credentials.token("fixed"), RetryPolicy(max_attempts=3, initial_backoff=0.005))
        with self.assertRaises(Error) as unavailable:
            self.me(client)
        self.assertEqual((unavailable.exception.code, unavailable.exception.reason),
                         (grpc.StatusCode.UNAVAILABLE, "MODULE_UNAVAILABLE"))
        self.assertEqual(len(self.server.calls), 3)

        self.server.calls.clear()
        violation = ("page_size", "OUT_OF_RANGE", "at most 1000")
        self.server.failures = [(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", None, (violation,))]
        with self.assertRaises(Error) as invalid:
            self.me(client)
        self.assertEqual(len(self.server.calls), 1)
        self.assertEqual([(v.field, v.reason) for v in invalid.exception.field_violations],
                         [("page_size", "OUT_OF_RANGE")])

        self.server.failures = [(grpc.StatusCode.RESOURCE_EXHAUSTED, "QUOTA", 3600, ())]
        with self.assertRaises(Error) as exhausted:
            self.me(client)
        self.assertEqual(exhausted.exception.retry_after, 3600)

    def test_a_refused_session_token_is_refreshed_once_and_the_call_repeated(self):
        self.server.valid_token = "no token yet"
        tokens = auth_pb2.TokenPair(access_token="expired", refresh_token="refresh-0", organization_id="org-1")
        client = self.client(Credentials.session(tokens))
        self.assertEqual(self.me(client).id, "me")
        self.assertEqual([token for _, token in self.server.calls], ["expired", "access-1"])
        self.assertEqual([(r.refresh_token, r.organization_id) for r in self.server.refreshes],
                         [("refresh-0", "org-1")])
        self.server.valid_token, self.server.revoked = "none", True
        with self.assertRaises(Error) as revoked:
            self.me(client)
        self.assertEqual(revoked.exception.reason, "SESSION_REVOKED")
        self.assertEqual(self.server.refreshes[1].refresh_token, "refresh-1", "the rotated refresh token")

    def test_an_api_key_is_exchanged_before_the_first_call_and_its_token_reused(self):
        client = self.client(Credentials.api_key("ciq_key_secret"))
        for _ in range(3):
            self.me(client)
        self.assertEqual(self.server.exchanges, 1)
        self.assertTrue(all(token == "key-token-1" for _, token in self.server.calls))
        with self.assertRaises(Error) as wrong:
            self.me(self.client(Credentials.api_key("ciq_wrong")))
        self.assertEqual(wrong.exception.reason, "API_KEY_INVALID")
        self.assertNotIn("ciq_key_secret", repr(Credentials.api_key("ciq_key_secret")))


if __name__ == "__main__":
    unittest.main()
