# Warden's container image: built on Debian 12, run on Debian 12 slim with only the runtime libraries.
# tests/integration/test_container.sh checks that the runtime packages below are exactly those the binary links
# against, and runs the binary in a root holding nothing but them (no container runtime is needed for the test).
#   docker build -t warden:0.1.0 .
#   docker run -p 8080:8080 -e GEMINI_API_KEY -e WARDEN_API_KEYS warden:0.1.0
# The entrypoint is `warden serve`; other commands override it (`--entrypoint /usr/local/bin/warden ... db migrate`).

FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libh2o-dev libuv1-dev libcurl4-openssl-dev libssl-dev zlib1g-dev \
      libjson-c-dev libyaml-dev libpq-dev libcmocka-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build --target warden -j "$(nproc)" \
 && strip /build/warden

FROM debian:12-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="warden" \
      org.opencontainers.image.description="Enterprise AI gateway: Claude Code, Codex and Gemini CLI on any provider, with SSO, RBAC, vaults and a verifiable audit trail" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="docker.io/library/debian:12-slim"
# runtime: the libraries the binary links against (and what they need, by apt), and the CA bundle for providers
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libc6 libcurl4 libh2o0.13 libjson-c5 libpq5 libssl3 libuv1 libyaml-0-2 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/warden/audit-spool /etc/warden \
 && chown -R 65532:65532 /var/lib/warden
COPY --from=build /build/warden /usr/local/bin/warden
# a numeric user (Kubernetes' runAsNonRoot can verify it without a passwd entry); the audit spool is its only
# writable path (mount a volume there with a read-only root filesystem)
USER 65532:65532
EXPOSE 8080 9464
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/warden", "serve"]
