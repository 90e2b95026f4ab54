// From nothing to analysis results through the SDK over grpc-web (the browser's protocol),
// against `complianceiq dev`: sign up (the verification letter read from the dev mailbox),
// create an organization, connect the ServiceNow simulator `dev` serves, sync it, analyse its
// controls, and read the results.
//
//   complianceiq dev &        # the platform on 127.0.0.1:8080, the simulator on :8090
//   cd sdk/typescript && npm install && npm run build
//   CIQ_MAILBOX=../../.complianceiq/mailbox node dist/examples/quickstart.js
//
// Settings (environment): CIQ_ENDPOINT (http://127.0.0.1:8080), CIQ_MAILBOX (the dev data
// directory's `mailbox`), CIQ_SIMULATOR_URL (http://127.0.0.1:8090).

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { createGrpcWebTransport } from "@connectrpc/connect-node";

import { AnalysisService, JobState } from "../src/gen/complianceiq/analysis/v1/analysis_pb.js";
import type { AnalysisResult } from "../src/gen/complianceiq/analysis/v1/analysis_pb.js";
import { AuthService } from "../src/gen/complianceiq/auth/v1/auth_pb.js";
import { AuthType, InstanceService, SyncMode, SyncState } from "../src/gen/complianceiq/instance/v1/instance_pb.js";
import { OrganizationService } from "../src/gen/complianceiq/organization/v1/organization_pb.js";
import { Code, Credentials, Platform, PlatformError, items } from "../src/index.js";

const endpoint = process.env.CIQ_ENDPOINT ?? "http://127.0.0.1:8080";
const mailbox = process.env.CIQ_MAILBOX ?? ".complianceiq/mailbox";
const simulator = process.env.CIQ_SIMULATOR_URL ?? "http://127.0.0.1:8090";

/** Asks `step` again until it answers something other than undefined. */
async function until<T>(what: string, seconds: number, step: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const done = await step();
    if (done !== undefined) return done;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${seconds} s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** `call`'s answer, or undefined while it fails with one of `codes`. */
async function allowing<T>(codes: Code[], call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    if (codes.includes(PlatformError.from(error).code)) return undefined;
    throw error;
  }
}

function verificationToken(email: string): string | undefined {
  let letters: string[];
  try {
    letters = readdirSync(mailbox).filter((name) => name.endsWith(`${email}.eml`)).sort();
  } catch {
    return undefined;
  }
  const letter = letters.at(-1);
  if (!letter) return undefined;
  const line = readFileSync(join(mailbox, letter), "utf8").split("\n").find((l) => l.startsWith("Token: "));
  return line?.slice("Token: ".length).trim();
}

async function main() {
  const anonymous = new Platform((interceptors) =>
    createGrpcWebTransport({ baseUrl: endpoint, httpVersion: "1.1", interceptors }),
  );
  const auth = anonymous.client(AuthService);
  const stamp = Date.now();
  const email = `sdk-ts-${stamp}@example.com`;
  const password = `sdk example ${stamp}`;
  await auth.register({ email, password, fullName: "SDK Example" });
  const token = await until("the verification letter", 10, async () => verificationToken(email));
  await auth.verifyEmail({ token });
  const login = await auth.login({ email, password });
  if (login.result.case !== "tokens") throw new Error("the login asked for a second factor");
  const tokens = login.result.value;
  const person = anonymous.withCredentials(Credentials.session(tokens));
  console.log(`signed up as ${email}`);

  const organization = await person
    .client(OrganizationService)
    .createOrganization({ organization: { displayName: `SDK Example ${stamp}` } });
  // The membership reaches the auth service by event.
  const scoped = await until("the membership", 30, () =>
    allowing([Code.PermissionDenied], () =>
      auth.refresh({ refreshToken: tokens.refreshToken, organizationId: organization.id }),
    ),
  );
  const member = anonymous.withCredentials(Credentials.session(scoped));
  console.log(`organization ${organization.displayName} (${organization.id})`);

  // Connect the simulator (the client retries while the organization's plan arrives) and sync.
  const instances = member.client(InstanceService);
  const instance = await instances.createInstance({
    instance: {
      name: "ServiceNow simulator",
      url: simulator,
      authType: AuthType.BASIC,
      credentials: { kind: { case: "basic", value: { username: "complianceiq", password: "complianceiq-sim" } } },
    },
    validateConnection: true,
  });
  const started = await instances.syncInstance({ instanceId: instance.id, mode: SyncMode.FULL });
  const run = await until("the sync", 300, async () => {
    const run = await instances.getSyncRun({ instanceId: instance.id, syncRunId: started.id });
    return run.state === SyncState.PENDING || run.state === SyncState.RUNNING ? undefined : run;
  });
  if (run.state !== SyncState.SUCCEEDED) throw new Error(`the sync ended ${SyncState[run.state]}: ${run.error}`);
  const fetched = run.tables.reduce((sum, table) => sum + Number(table.fetched), 0);
  console.log(`synced ${fetched} records from ${instance.url}`);

  // Analyse the controls (once the store has taken in the sync), then read every result.
  const analysis = member.client(AnalysisService);
  const started_job = await until("the analysis to start", 30, () =>
    allowing([Code.NotFound, Code.FailedPrecondition], () => analysis.analyzeControls({ instanceId: instance.id })),
  );
  const job = await until("the analysis", 120, async () => {
    const job = await analysis.getAnalysisJob({ jobId: started_job.id });
    return job.state === JobState.QUEUED || job.state === JobState.RUNNING ? undefined : job;
  });
  if (job.state !== JobState.SUCCEEDED) throw new Error(`the analysis ended ${JobState[job.state]}: ${job.error}`);
  const results: AnalysisResult[] = [];
  const list = (request: Parameters<typeof analysis.listAnalysisResults>[0]) => analysis.listAnalysisResults(request);
  for await (const result of items(list, { jobId: job.id, pageSize: 100 }, (page) => page.results)) {
    results.push(result);
  }
  const scored = results.flatMap((result) => (result.score === undefined ? [] : [result.score]));
  const mean = scored.reduce((sum, score) => sum + score, 0) / Math.max(scored.length, 1);
  console.log(`${results.length} results, ${scored.length} scored, mean effectiveness ${mean.toFixed(1)}`);
  if (results.length === 0) throw new Error("the analysis gave no results");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
