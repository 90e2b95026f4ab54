#!/usr/bin/env python3
"""Checks the REST edge against its own OpenAPI document.

Starts `complianceiq dev` on a scratch data directory, signs a person up over REST (register,
verify from the dev mailbox, log in, create an organization, switch the token to it), validates
/openapi.json with openapi-spec-validator, then runs schemathesis against it as that person:
no 5xx, every response matching its schema, status code and content type.

usage: api_fuzz.py BINARY [--max-examples N] [--tag SERVICE ...]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

PORT_OFFSET = 22000  # away from `make run` (8001..9090) and below the ephemeral range (32768 and up)
GATEWAY = f"http://127.0.0.1:{8080 + PORT_OFFSET}"
PASSWORD = "fuzzing is a form of honesty"

# Services fuzzed: every one, since each RPC is built. A service added to the contracts
# before its code would answer UNIMPLEMENTED (501) and joins this list with its code.
BUILT = [
    "AuthService",
    "UserService",
    "OrganizationService",
    "InstanceService",
    "AnalysisService",
    "InsightsService",
    "WidgetService",
    "DashboardService",
    "NotificationService",
    "AuditService",
    "MlService",
    "WebhookService",
]
# Operations that would end the fuzzing person's session or organization midway.
SESSION_ENDING = ["AuthService_Logout", "OrganizationService_DeleteOrganization"]
# Server streams stay open until the token expires; the e2e tests read them instead.
ENDLESS = ["NotificationService_StreamNotifications"]


def call(method, path, body=None, token=None):
    request = urllib.request.Request(f"{GATEWAY}{path}", method=method)
    if body is not None:
        request.add_header("content-type", "application/json")
        request.data = json.dumps(body).encode()
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        sys.exit(f"{method} {path}: {error.code} {error.read().decode(errors='replace')}")


def wait_ready(process, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"complianceiq dev exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{GATEWAY}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    sys.exit(f"the gateway was not ready within {seconds} s")


def sign_up(data_dir):
    email = "fuzzer@example.com"
    call("POST", "/api/v1/auth/register", {"email": email, "password": PASSWORD, "fullName": "Fuzzer"})
    token = None
    for _ in range(100):  # the letter is sent after the registration commits
        token = next(
            (
                line.split(" ", 1)[1].strip()
                for letter in sorted(Path(data_dir, "mailbox").glob(f"*{email}.eml"))
                for line in letter.read_text().splitlines()
                if line.startswith("Token: ")
            ),
            None,
        )
        if token:
            break
        time.sleep(0.1)
    if not token:
        sys.exit("no verification letter reached the dev mailbox")
    call("POST", "/api/v1/auth/verify-email", {"token": token})
    tokens = call("POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})["tokens"]
    organization = call("POST", "/api/v1/organizations", {"displayName": "Fuzz Co"}, tokens["accessToken"])
    # The membership is written by an event projection; the switch succeeds once it exists.
    for _ in range(100):
        request = urllib.request.Request(f"{GATEWAY}/api/v1/auth/refresh", method="POST")
        request.add_header("content-type", "application/json")
        request.data = json.dumps(
            {"refreshToken": tokens["refreshToken"], "organizationId": organization["id"]}
        ).encode()
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())["accessToken"], organization["id"]
        except urllib.error.HTTPError as error:
            if error.code != 403:
                sys.exit(f"refresh: {error.code} {error.read().decode(errors='replace')}")
        time.sleep(0.1)
    sys.exit("the organization's membership never reached the auth service")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--tag", action="append", default=None)
    parser.add_argument("--report-dir", default=None)
    arguments = parser.parse_args()
    tools = Path(sys.executable).parent

    data_dir = tempfile.mkdtemp(prefix="ciq-fuzz-")
    environment = dict(
        os.environ,
        CIQ_DATA_DIR=data_dir,
        CIQ_PORT_OFFSET=str(PORT_OFFSET),
        CIQ_LOG="warn",
        # Rate limits are tested elsewhere; here they would only hide the answers.
        CIQ_RATE_LIMIT_CLIENT_PER_MINUTE="100000000",
        CIQ_RATE_LIMIT_TENANT_PER_MINUTE="100000000",
    )
    log = open(Path(data_dir, "platform.log"), "w")
    process = subprocess.Popen([arguments.binary, "dev", "--no-demo"], env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(process)
        token, organization_id = sign_up(data_dir)
        user_id = call("GET", "/api/v1/users/me", token=token)["id"]
        # The person's own identifiers, so generated calls reach the logic behind the
        # tenant check rather than stopping at 403 for a random id.
        config = Path(data_dir, "schemathesis.toml")
        config.write_text(f'[parameters]\n"path.org_id" = "{organization_id}"\n"path.user_id" = "{user_id}"\n')

        document = Path(data_dir, "openapi.json")
        with urllib.request.urlopen(f"{GATEWAY}/openapi.json") as response:
            document.write_bytes(response.read())
        subprocess.run([tools / "openapi-spec-validator", str(document)], check=True)

        command = [
            tools / "schemathesis", "--config-file", str(config), "run", f"{GATEWAY}/openapi.json",
            "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,"
                        "content_type_conformance",
            "--header", f"Authorization: Bearer {token}",
            "--max-examples", str(arguments.max_examples),
            "--seed", os.environ.get("CIQ_FUZZ_SEED", "20261125"),
            "--workers", "2",
            "--phases", "examples,coverage,fuzzing",
            "--suppress-health-check", "all",
            "--request-timeout", "30",
        ]
        for tag in arguments.tag or BUILT:
            command += ["--include-tag", tag]
        for operation in SESSION_ENDING + ENDLESS:
            command += ["--exclude-operation-id", operation]
        if arguments.report_dir:
            command += ["--report", "junit", "--report-dir", str(Path(arguments.report_dir).resolve())]
        result = subprocess.run(command, cwd=data_dir)  # its caches stay out of the checkout
        if result.returncode != 0:
            log.flush()
            print(f"platform log: {Path(data_dir, 'platform.log')}")
            sys.exit(result.returncode)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
