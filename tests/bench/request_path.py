"""The request path against the design's own stack, in one run (`make bench`).

Boots ComplianceIQ as `serve --target all` on PostgreSQL, Redis and NATS JetStream (mutual
TLS between the gateway and the modules, as in production), and beside it the FastAPI +
asyncpg peer in tests/bench/peer (uvicorn, 2 workers) on the same database. Both answer the
same authenticated read, `GET /api/v1/users/me`, with the same token. h2load drives them
(HTTP/1.1, 32 connections); its per-request log gives p50/p99; /proc gives the CPU each
server spent. Then native gRPC through the edge one call at a time, and pgbench's rate for
the bare SELECT on the same database.

    python tests/bench/request_path.py <complianceiq binary> [--requests N] [--profile FILE] [--solo N]

With --solo N, ComplianceIQ runs N rounds alone (no peer), with its resident memory after each.
With --profile, `perf record` samples ComplianceIQ during its last measurement and the
flat profile (self time per symbol, top 40) is written to FILE, the samples to FILE.data.

Needs CIQ_TEST_POSTGRES_URL (a superuser), CIQ_TEST_REDIS_URL, CIQ_TEST_NATS_URL, h2load
(Debian's nghttp2-client), pgbench, and a Python with the peer's packages (the Makefile's
bench virtualenv).
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

PORT_OFFSET = 23000  # away from `make run`, the fuzz run (22000) and the ephemeral range
GATEWAY_PORT = 8080 + PORT_OFFSET
PEER_PORT = 31500
PASSWORD = "correct horse battery staple"
CONNECTIONS = 32
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def wait_http(url, process, seconds=90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{process.args[0]} exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{url} did not answer within {seconds} s")


def call(base, method, path, body=None, token=None, expect_error=False):
    request = urllib.request.Request(f"{base}{path}", method=method)
    if body is not None:
        request.add_header("content-type", "application/json")
        request.data = json.dumps(body).encode()
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        if expect_error:
            return None
        sys.exit(f"{method} {path}: {error.code} {error.read().decode(errors='replace')}")


def mailbox_token(mailbox, email):
    for _ in range(100):
        for letter in sorted(Path(mailbox).glob(f"*{email}.eml")):
            for line in letter.read_text().splitlines():
                if line.startswith("Token: "):
                    return line.split(" ", 1)[1].strip()
        time.sleep(0.1)
    sys.exit("no verification letter reached the mailbox")


def sign_up(base, mailbox):
    email = "bench@example.com"
    call(base, "POST", "/api/v1/auth/register", {"email": email, "password": PASSWORD, "fullName": "Bench"})
    call(base, "POST", "/api/v1/auth/verify-email", {"token": mailbox_token(mailbox, email)})
    tokens = call(base, "POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})["tokens"]
    organization = call(base, "POST", "/api/v1/organizations", {"displayName": "Bench Co"}, tokens["accessToken"])
    for _ in range(100):  # the membership arrives by event
        body = {"refreshToken": tokens["refreshToken"], "organizationId": organization["id"]}
        scoped = call(base, "POST", "/api/v1/auth/refresh", body, expect_error=True)
        if scoped:
            return scoped["accessToken"]
        time.sleep(0.1)
    sys.exit("the organization's membership never reached the auth service")


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def tree(pid):
    """The process and its descendants (uvicorn's workers)."""
    pids, frontier = [pid], [pid]
    while frontier:
        children = []
        for parent in frontier:
            path = Path(f"/proc/{parent}/task/{parent}/children")
            if path.exists():
                children += [int(child) for child in path.read_text().split()]
        pids += children
        frontier = children
    return pids


def h2load(url, token, requests, connections, extra=()):
    with tempfile.NamedTemporaryFile(suffix=".log") as log:
        command = [
            "h2load", "-n", str(requests), "-c", str(connections), "-m", "1", "-t", "1",
            "-H", f"authorization: Bearer {token}", f"--log-file={log.name}", *extra, url,
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        failed = [line for line in output.splitlines() if line.startswith("requests:")]
        durations = []
        for line in Path(log.name).read_text().splitlines():
            _, status, micros = line.split("\t")[:3]
            if status not in ("200",):
                sys.exit(f"{url}: a request answered {status}\n{output}")
            durations.append(int(micros))
    finished = next(line for line in output.splitlines() if line.startswith("finished in"))
    rate = float(finished.split(",")[1].split()[0])
    durations.sort()
    return {
        "rate": rate,
        "p50": durations[len(durations) // 2] / 1000,
        "p99": durations[int(len(durations) * 0.99)] / 1000,
        "summary": failed[0] if failed else "",
    }


def measure(name, pid, url, token, requests, extra=(), profile=None):
    h2load(url, token, min(2000, requests), CONNECTIONS, extra)  # warm-up
    before = cpu_seconds(tree(pid))
    recorder = None
    if profile:
        recorder = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(pid), "-o", str(profile)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    result = h2load(url, token, requests, CONNECTIONS, extra)
    if recorder:
        recorder.send_signal(signal.SIGINT)
        recorder.wait(60)
    spent = cpu_seconds(tree(pid)) - before
    result["cpu_us"] = spent * 1e6 / requests
    result["name"] = name
    return result


def psql(url, sql):
    return subprocess.run(["psql", url, "-Atqc", sql], capture_output=True, text=True, check=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--profile", help="write ComplianceIQ's flat perf profile here")
    parser.add_argument("--solo", type=int, default=0, metavar="N",
                        help="instead: N rounds of ComplianceIQ alone, with its RSS, to see whether it degrades")
    arguments = parser.parse_args()
    for tool in ("h2load", "pgbench", "psql"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (apt-get install nghttp2-client postgresql-client)")
    servers = {name: os.environ.get(f"CIQ_TEST_{name}_URL") for name in ("POSTGRES", "REDIS", "NATS")}
    missing = [name for name, url in servers.items() if not url]
    if missing:
        sys.exit(f"set CIQ_TEST_{{{','.join(missing)}}}_URL: the benchmark runs on real servers")

    work = Path(tempfile.mkdtemp(prefix="ciq-bench-"))
    suffix = uuid.uuid4().hex[:10]
    database = f"ciq_bench_{suffix}"
    admin = urllib.parse.urlparse(servers["POSTGRES"])
    app_url = admin._replace(netloc=f"complianceiq_app@{admin.hostname}:{admin.port or 5432}", path=f"/{database}").geturl()
    admin_on_database = admin._replace(path=f"/{database}").geturl()
    processes = []
    try:
        # Development key material (mesh CA and certificates, JWT and encryption keys), as
        # cert-manager and a secret store would provide it.
        dev_env = dict(os.environ, CIQ_DATA_DIR=str(work / "keys"), CIQ_PORT_OFFSET=str(PORT_OFFSET + 100), CIQ_LOG="warn")
        dev = subprocess.Popen([arguments.binary, "dev", "--no-demo"], env=dev_env, stdout=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{8080 + PORT_OFFSET + 100}/readyz", dev)
        dev.send_signal(signal.SIGTERM)
        dev.wait(30)

        psql(servers["POSTGRES"], f"CREATE DATABASE {database}")
        keys = ",".join((work / "keys" / "keys" / "encryption-keys").read_text().split())
        env = dict(
            os.environ,
            CIQ_DATA_DIR=str(work / "serve"),
            CIQ_DATABASE_URL=app_url,
            CIQ_DATABASE_ADMIN_USER=admin.username or "postgres",
            CIQ_REDIS_URL=servers["REDIS"],
            CIQ_REDIS_KEY_PREFIX=f"ciqbench{suffix}:",
            CIQ_NATS_URL=servers["NATS"],
            CIQ_NATS_STREAM=f"CIQ_BENCH_{suffix.upper()}",
            CIQ_NATS_SUBJECT_PREFIX=f"ciqbench{suffix}",
            CIQ_MESH_CERT_DIR=str(work / "keys" / "mesh"),
            CIQ_JWT_KEYS_DIR=str(work / "keys" / "keys" / "jwt"),
            CIQ_ENCRYPTION_KEYS=keys,
            CIQ_PORT_OFFSET=str(PORT_OFFSET),
            CIQ_OPS_PORT="9090",
            CIQ_LOG="warn",
            # Limits would only cap the measurement.
            CIQ_RATE_LIMIT_CLIENT_PER_MINUTE="1000000000",
            CIQ_RATE_LIMIT_TENANT_PER_MINUTE="1000000000",
        )
        if admin.password:
            env["CIQ_DATABASE_ADMIN_PASSWORD"] = admin.password
        serve = subprocess.Popen([arguments.binary, "serve", "--target", "all", "--migrate"], env=env)
        processes.append(serve)
        base = f"http://127.0.0.1:{GATEWAY_PORT}"
        wait_http(f"{base}/readyz", serve)
        token = sign_up(base, work / "serve" / "mailbox")

        peer_env = dict(os.environ, PEER_DATABASE_URL=app_url, PEER_JWT_KEYS_DIR=env["CIQ_JWT_KEYS_DIR"])
        peer = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(Path(__file__).parent / "peer"),
             "--workers", "2", "--port", str(PEER_PORT), "--log-level", "warning", "--no-access-log",
             "--loop", "uvloop", "--http", "httptools"],
            env=peer_env,
        )
        processes.append(peer)
        wait_http(f"http://127.0.0.1:{PEER_PORT}/api/v1/users/me", peer)

        if arguments.solo:
            print("| round | requests/s | p99 ms | CPU µs/request | RSS MB |\n| ---: | ---: | ---: | ---: | ---: |")
            for round in range(arguments.solo):
                r = measure("solo", serve.pid, f"{base}/api/v1/users/me", token, arguments.requests, ["--h1"])
                status = Path(f"/proc/{serve.pid}/status").read_text()
                rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
                print(f"| {round + 1} | {r['rate']:,.0f} | {r['p99']:.2f} | {r['cpu_us']:,.0f} | {rss / 1024:.0f} |", flush=True)
            return

        results = []
        perf_data = work / "perf.data" if arguments.profile else None
        for round in range(2):  # alternate, so noise on the shared machine spreads over both
            results.append(measure("FastAPI + asyncpg (2 uvicorn workers)", peer.pid,
                                   f"http://127.0.0.1:{PEER_PORT}/api/v1/users/me", token, arguments.requests, ["--h1"]))
            results.append(measure("ComplianceIQ serve --target all (REST, edge → user over mTLS)", serve.pid,
                                   f"{base}/api/v1/users/me", token, arguments.requests, ["--h1"],
                                   perf_data if round == 1 else None))
        if perf_data:
            report = subprocess.run(
                ["perf", "report", "-i", str(perf_data), "--no-children", "--stdio", "--sort", "dso,symbol",
                 "-g", "none", "--percent-limit", "0.4"],
                capture_output=True, text=True, check=True,
            ).stdout
            lines = [line for line in report.splitlines() if line.strip() and not line.startswith("#")]
            Path(arguments.profile).write_text("\n".join(lines[:40]) + "\n")
            shutil.copy(perf_data, arguments.profile + ".data")  # for call graphs: perf report -i

        grpc_body = work / "empty.grpc"
        grpc_body.write_bytes(b"\x00\x00\x00\x00\x00")
        single = h2load(
            f"{base}/complianceiq.user.v1.UserService/GetCurrentUser", token, 2000, 1,
            ["-d", str(grpc_body), "-H", "content-type: application/grpc", "-H", "te: trailers"],
        )

        organization, user = psql(admin_on_database, "SELECT organization_id || ' ' || user_id FROM user_profiles LIMIT 1").split()
        script = work / "select.sql"
        script.write_text(
            "SELECT p.user_id, p.email, p.full_name FROM user_profiles p LEFT JOIN people d ON d.user_id = p.user_id "
            f"WHERE p.organization_id = '{organization}' AND p.user_id = '{user}' AND p.state <> 'removed';\n"
        )
        pgbench = subprocess.run(
            ["pgbench", "-n", "-f", str(script), "-c", str(CONNECTIONS), "-j", "2", "-T", "10", admin_on_database],
            capture_output=True, text=True, check=True,
        ).stdout
        tps = next(line for line in pgbench.splitlines() if line.startswith("tps")).split()[2]

        print("\n| server | requests/s | p50 ms | p99 ms | CPU µs/request |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for result in results:
            print(f"| {result['name']} | {result['rate']:,.0f} | {result['p50']:.2f} | {result['p99']:.2f} | {result['cpu_us']:,.0f} |")
        print(f"\nNative gRPC through the edge, one call at a time (h2load -c 1 -m 1): p50 {single['p50']:.2f} ms, "
              f"p99 {single['p99']:.2f} ms, {single['rate']:,.0f} calls/s")
        print(f"pgbench, the bare SELECT, {CONNECTIONS} clients: {float(tps):,.0f} transactions/s")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        subprocess.run(["psql", servers["POSTGRES"], "-qc", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
