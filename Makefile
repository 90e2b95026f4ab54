# ComplianceIQ. `make run` starts the whole platform on embedded defaults; `make test`
# runs the tests (against PostgreSQL, Redis and NATS too when CIQ_TEST_* are set).

CARGO ?= cargo
BUF_VERSION := 1.75.0
BUF := .tools/node_modules/.bin/buf
# The widget tests parse generated HTML with parse5 (and JavaScript with node --check).
PARSE5 := .tools/node_modules/parse5/package.json
FUZZ_PYTHON := .tools/venv/bin/python
FUZZ_EXAMPLES ?= 25
KUBE_VALIDATE := .tools/venv/bin/kubernetes-validate
OVERLAYS := dev prod
SERVERS_GIVEN := $(and $(CIQ_TEST_POSTGRES_URL),$(CIQ_TEST_REDIS_URL),$(CIQ_TEST_NATS_URL))
HAVE_NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: run build test lint fmt buf-lint sdk-generate console console-screenshots api-fuzz k8s bench bench-sync-1m clean

## run: every module in one process on SQLite, an in-process bus and cache (data in .complianceiq/)
run:
	$(CARGO) run --bin complianceiq -- dev

build:
	$(CARGO) build --workspace --all-targets

## test: unit and end-to-end tests, then the SDKs (sdk/check.sh: generated code current, Python tests, examples against `complianceiq dev`); `::servers` variants need CIQ_TEST_POSTGRES_URL, CIQ_TEST_REDIS_URL, CIQ_TEST_NATS_URL
## (and the binary, built first, for the distributed test's processes)
test: $(PARSE5)
ifeq ($(SERVERS_GIVEN),)
	@echo "note: CIQ_TEST_POSTGRES_URL, CIQ_TEST_REDIS_URL and CIQ_TEST_NATS_URL are not all set:"
	@echo "      running the embedded tests only (.ci/run runs everything against real servers)"
ifeq ($(HAVE_NEXTEST),yes)
	$(CARGO) nextest run --workspace --no-fail-fast -E 'not test(/::servers$$/)'
else
	$(CARGO) test --workspace --no-fail-fast -- --skip ::servers
endif
else
	$(CARGO) build --bin complianceiq
ifeq ($(HAVE_NEXTEST),yes)
	$(CARGO) nextest run --workspace --no-fail-fast
else
	$(CARGO) test --workspace --no-fail-fast
endif
endif
	sdk/check.sh

## lint: formatting, clippy with warnings as errors, and buf lint of the contracts
lint: buf-lint
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

$(BUF):
	npm install --prefix .tools --no-audit --no-fund --silent @bufbuild/buf@$(BUF_VERSION)

$(PARSE5):
	npm install --prefix .tools --no-audit --no-fund --silent parse5@7.3.0

## sdk-generate: regenerate the TypeScript and Python SDKs' code from proto/ (buf.gen.yaml, sdk/python/generate.sh)
sdk-generate:
	npm ci --prefix sdk/typescript --no-audit --no-fund --silent
	sdk/typescript/node_modules/.bin/buf generate
	sdk/check.sh --venv-only
	sdk/python/generate.sh .tools/sdk-venv/bin/python

## console: rebuild the web console into console/dist (checked in; the gateway embeds it)
console:
	npm ci --prefix sdk/typescript --no-audit --no-fund --silent
	npm ci --prefix console --no-audit --no-fund --silent
	node console/build.mjs console/dist

## console-screenshots: the SDK and console checks, keeping a screenshot of every page in docs/console
console-screenshots:
	CIQ_SCREENSHOTS=$(CURDIR)/docs/console sdk/check.sh

buf-lint: $(BUF)
	$(BUF) lint

$(FUZZ_PYTHON):
	python3 -m venv .tools/venv
	.tools/venv/bin/pip install --quiet --disable-pip-version-check schemathesis==4.32.5 openapi-spec-validator==0.9.0

## api-fuzz: validate /openapi.json and fuzz the REST edge with schemathesis (FUZZ_EXAMPLES per operation)
api-fuzz: $(FUZZ_PYTHON)
	$(CARGO) build --bin complianceiq
	$(FUZZ_PYTHON) .ci/api_fuzz.py $${CARGO_TARGET_DIR:-target}/debug/complianceiq --max-examples $(FUZZ_EXAMPLES)

$(KUBE_VALIDATE): $(FUZZ_PYTHON)
	.tools/venv/bin/pip install --quiet --disable-pip-version-check kubernetes-validate==1.37.0

## k8s: generated manifests up to date, every overlay rendered (kubectl kustomize) and validated offline
k8s: $(KUBE_VALIDATE)
	$(CARGO) run --quiet --bin complianceiq -- manifests --check
	@mkdir -p .tools/k8s
	@for overlay in $(OVERLAYS); do \
	  echo "k8s/overlays/$$overlay"; \
	  kubectl kustomize k8s/overlays/$$overlay > .tools/k8s/$$overlay.yaml || exit 1; \
	  $(KUBE_VALIDATE) --strict --quiet --no-warn .tools/k8s/$$overlay.yaml || exit 1; \
	done
	@echo "every overlay is valid Kubernetes 1.37 (cert-manager and Istio kinds are CRDs: not schema-checked offline)"

BENCH_PYTHON := .tools/bench-venv/bin/python

$(BENCH_PYTHON):
	python3 -m venv .tools/bench-venv
	.tools/bench-venv/bin/pip install --quiet --disable-pip-version-check fastapi==0.115.14 uvicorn==0.54.0 uvloop==0.23.0 httptools==0.9.0 asyncpg==0.32.0 pyjwt==2.15.1 cryptography==50.0.2 scikit-learn==1.7.2

## bench: the gateway against direct gRPC, sync throughput against direct inserts, the control
## analysis against one SQL aggregate, the control failure model against scikit-learn, and the request
## path against the design's FastAPI + asyncpg stack (release build; needs CIQ_TEST_*, h2load, pgbench); see BENCHMARKS.md
bench: $(BENCH_PYTHON)
	$(CARGO) build --release --bin complianceiq
	$(CARGO) bench -p complianceiq-e2e --bench edge
	$(CARGO) bench -p complianceiq-e2e --bench sync
	$(CARGO) bench -p complianceiq-e2e --bench analysis
	$(CARGO) bench -p complianceiq-e2e --bench audit
	$(CARGO) bench -p complianceiq-e2e --bench webhook
	$(CARGO) bench -p complianceiq-e2e --bench dashboard
	CIQ_BENCH_PYTHON=$(CURDIR)/$(BENCH_PYTHON) $(CARGO) bench -p complianceiq-e2e --bench ml
	$(BENCH_PYTHON) tests/bench/request_path.py $${CARGO_TARGET_DIR:-target}/release/complianceiq

## bench-sync-1m: the sync benchmark on a million-record instance, PostgreSQL only (minutes)
bench-sync-1m:
	$(CARGO) build --release --bin complianceiq
	CIQ_BENCH_CONTROLS=76000 CIQ_BENCH_STORES=postgres $(CARGO) bench -p complianceiq-e2e --bench sync

clean:
	$(CARGO) clean
	rm -rf .complianceiq .tools
