"""From nothing to analysis results through the SDK, against `complianceiq dev`: sign up (the
verification letter read from the dev mailbox), create an organization, connect the ServiceNow
simulator `dev` serves, sync it, analyse its controls, and read the results.

    complianceiq dev &        # the platform on 127.0.0.1:8080, the simulator on :8090
    CIQ_MAILBOX=.complianceiq/mailbox python sdk/python/examples/quickstart.py

Settings (environment): CIQ_ENDPOINT (127.0.0.1:8080), CIQ_MAILBOX (the dev data directory's
`mailbox`), CIQ_SIMULATOR_URL (http://127.0.0.1:8090).
"""

import os
import sys
import time
from pathlib import Path

import grpc

from complianceiq.analysis.v1 import analysis_pb2, analysis_pb2_grpc
from complianceiq.auth.v1 import auth_pb2, auth_pb2_grpc
from complianceiq.instance.v1 import instance_pb2, instance_pb2_grpc
from complianceiq.organization.v1 import organization_pb2, organization_pb2_grpc
from complianceiq_sdk import Client, Credentials, Error


def until(what, seconds, step):
    """Asks `step` again until it answers something other than None."""
    deadline = time.monotonic() + seconds
    while True:
        done = step()
        if done is not None:
            return done
        if time.monotonic() > deadline:
            sys.exit(f"{what}: not within {seconds} s")
        time.sleep(0.2)


def verification_token(mailbox, email):
    letters = sorted(Path(mailbox).glob(f"*{email}.eml"))
    for line in letters[-1].read_text().splitlines() if letters else ():
        if line.startswith("Token: "):
            return line.removeprefix("Token: ").strip()
    return None


def allowing(codes, call):
    """`call`'s answer, or None while it fails with one of `codes`."""
    try:
        return call()
    except Error as error:
        if error.code in codes:
            return None
        raise


def main():
    endpoint = os.environ.get("CIQ_ENDPOINT", "127.0.0.1:8080")
    mailbox = os.environ.get("CIQ_MAILBOX", ".complianceiq/mailbox")
    simulator = os.environ.get("CIQ_SIMULATOR_URL", "http://127.0.0.1:8090")
    anonymous = Client(endpoint)
    auth = anonymous.stub(auth_pb2_grpc.AuthServiceStub)

    stamp = int(time.time() * 1000)
    email, password = f"sdk-py-{stamp}@example.com", f"sdk example {stamp}"
    anonymous.call(auth.Register, auth_pb2.RegisterRequest(email=email, password=password, full_name="SDK Example"))
    token = until("the verification letter", 10, lambda: verification_token(mailbox, email))
    anonymous.call(auth.VerifyEmail, auth_pb2.VerifyEmailRequest(token=token))
    login = anonymous.call(auth.Login, auth_pb2.LoginRequest(email=email, password=password))
    if not login.HasField("tokens"):
        sys.exit("the login asked for a second factor")
    person = anonymous.with_credentials(Credentials.session(login.tokens))
    print(f"signed up as {email}")

    organizations = person.stub(organization_pb2_grpc.OrganizationServiceStub)
    organization = person.call(organizations.CreateOrganization, organization_pb2.CreateOrganizationRequest(
        organization=organization_pb2.Organization(display_name=f"SDK Example {stamp}")))
    # The membership reaches the auth service by event.
    refresh = auth_pb2.RefreshRequest(refresh_token=login.tokens.refresh_token, organization_id=organization.id)
    scoped = until("the membership", 30, lambda: allowing(
        (grpc.StatusCode.PERMISSION_DENIED,), lambda: anonymous.call(auth.Refresh, refresh)))
    member = anonymous.with_credentials(Credentials.session(scoped))
    print(f"organization {organization.display_name} ({organization.id})")

    # Connect the simulator (the client retries while the organization's plan arrives) and sync.
    instances = member.stub(instance_pb2_grpc.InstanceServiceStub)
    instance = member.call(instances.CreateInstance, instance_pb2.CreateInstanceRequest(
        instance=instance_pb2.Instance(
            name="ServiceNow simulator", url=simulator, auth_type=instance_pb2.AUTH_TYPE_BASIC,
            credentials=instance_pb2.Credentials(basic=instance_pb2.BasicCredentials(
                username="complianceiq", password="complianceiq-sim"))),
        validate_connection=True))
    run = member.call(instances.SyncInstance, instance_pb2.SyncInstanceRequest(
        instance_id=instance.id, mode=instance_pb2.SYNC_MODE_FULL))
    get_run = instance_pb2.GetSyncRunRequest(instance_id=instance.id, sync_run_id=run.id)
    running = (instance_pb2.SYNC_STATE_PENDING, instance_pb2.SYNC_STATE_RUNNING)
    run = until("the sync", 300, lambda: (lambda r: None if r.state in running else r)(
        member.call(instances.GetSyncRun, get_run)))
    if run.state != instance_pb2.SYNC_STATE_SUCCEEDED:
        sys.exit(f"the sync ended {instance_pb2.SyncState.Name(run.state)}: {run.error}")
    print(f"synced {sum(table.fetched for table in run.tables)} records from {instance.url}")

    # Analyse the controls (once the store has taken in the sync), then read every result.
    analysis = member.stub(analysis_pb2_grpc.AnalysisServiceStub)
    analyse = analysis_pb2.AnalyzeControlsRequest(instance_id=instance.id)
    job = until("the analysis to start", 30, lambda: allowing(
        (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION),
        lambda: member.call(analysis.AnalyzeControls, analyse)))
    pending = (analysis_pb2.JOB_STATE_QUEUED, analysis_pb2.JOB_STATE_RUNNING)
    job = until("the analysis", 120, lambda: (lambda j: None if j.state in pending else j)(
        member.call(analysis.GetAnalysisJob, analysis_pb2.GetAnalysisJobRequest(job_id=job.id))))
    if job.state != analysis_pb2.JOB_STATE_SUCCEEDED:
        sys.exit(f"the analysis ended {analysis_pb2.JobState.Name(job.state)}: {job.error}")
    results = list(member.items(analysis.ListAnalysisResults,
                                analysis_pb2.ListAnalysisResultsRequest(job_id=job.id, page_size=100)))
    scored = [result.score for result in results if result.HasField("score")]
    print(f"{len(results)} results, {len(scored)} scored, mean effectiveness {sum(scored) / max(len(scored), 1):.1f}")
    if not results:
        sys.exit("the analysis gave no results")


if __name__ == "__main__":
    main()
