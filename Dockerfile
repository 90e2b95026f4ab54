# syntax=docker/dockerfile:1
# The one image: every module is `complianceiq serve --target <module>`.
#   docker build -t complianceiq:dev .

FROM rust:1.95-bookworm AS build
# SAML signatures are checked by libxmlsec1 (samael's bindings are generated with libclang).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libxmlsec1-dev libxml2-dev libssl-dev libclang-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so source edits do not refetch the registry.
COPY Cargo.toml Cargo.lock ./
COPY proto proto
COPY services services
COPY gateway-rest gateway-rest
# The web console, built and checked in (console/check.sh keeps it matching its sources).
COPY console/dist console/dist
COPY tests tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin complianceiq \
 && cp target/release/complianceiq /complianceiq

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libxmlsec1 libxmlsec1-openssl libxml2 libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 complianceiq \
 && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin complianceiq \
 && install -d -o 65532 -g 65532 /var/lib/complianceiq
COPY --from=build /complianceiq /usr/local/bin/complianceiq
USER 65532:65532
ENV CIQ_DATA_DIR=/var/lib/complianceiq CIQ_LISTEN_HOST=0.0.0.0
# gRPC/REST ports of the modules (8001-8012, gateway 8080) and the operations port.
EXPOSE 8001-8012 8080 9090
ENTRYPOINT ["/usr/local/bin/complianceiq"]
CMD ["serve", "--help"]
