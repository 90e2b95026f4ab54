# ComplianceIQ. `make run` starts the whole platform on embedded defaults; `make test`
# runs the tests (against PostgreSQL, Redis and NATS too when CIQ_TEST_* are set).

CARGO ?= cargo
BUF_VERSION := 1.75.0
BUF := .tools/node_modules/.bin/buf
SERVERS_GIVEN := $(and $(CIQ_TEST_POSTGRES_URL),$(CIQ_TEST_REDIS_URL),$(CIQ_TEST_NATS_URL))
HAVE_NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: run build test lint fmt buf-lint bench clean

## run: every module in one process on SQLite, an in-process bus and cache (data in .complianceiq/)
run:
	$(CARGO) run --bin complianceiq -- dev

build:
	$(CARGO) build --workspace --all-targets

## test: unit and end-to-end tests; `::servers` variants need CIQ_TEST_POSTGRES_URL, CIQ_TEST_REDIS_URL, CIQ_TEST_NATS_URL
test:
ifeq ($(SERVERS_GIVEN),)
	@echo "note: CIQ_TEST_POSTGRES_URL, CIQ_TEST_REDIS_URL and CIQ_TEST_NATS_URL are not all set:"
	@echo "      running the embedded tests only (.ci/run runs everything against real servers)"
ifeq ($(HAVE_NEXTEST),yes)
	$(CARGO) nextest run --workspace --no-fail-fast -E 'not test(/::servers$$/)'
else
	$(CARGO) test --workspace --no-fail-fast -- --skip ::servers
endif
else
ifeq ($(HAVE_NEXTEST),yes)
	$(CARGO) nextest run --workspace --no-fail-fast
else
	$(CARGO) test --workspace --no-fail-fast
endif
endif

## lint: formatting, clippy with warnings as errors, and buf lint of the contracts
lint: buf-lint
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

$(BUF):
	npm install --prefix .tools --no-audit --no-fund --silent @bufbuild/buf@$(BUF_VERSION)

buf-lint: $(BUF)
	$(BUF) lint

clean:
	$(CARGO) clean
	rm -rf .complianceiq .tools
