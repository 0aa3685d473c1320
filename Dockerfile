# syntax=docker/dockerfile:1
# FileFleet's image: the release `filefleet` (static Swift stdlib) and the patched librdkafka it links
# (scripts/build-librdkafka), on debian:bookworm-slim as user 10001. `docker build -t filefleet .`
# `make image-proof` runs the runtime stage's steps in a debootstrap chroot and imports a tree with it.

FROM swift:6.3-bookworm AS builder
# Debian's current bookworm packages, as scripts/setup installs them (not pinned, see below).
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential \
      libpq-dev \
      libssl-dev \
      liblz4-dev \
      libzstd-dev \
      patch \
      pkg-config \
      zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# librdkafka first: it changes far less often than the sources.
COPY scripts/build-librdkafka scripts/
COPY patches/ patches/
RUN scripts/build-librdkafka /usr/local
COPY Package.* ./
RUN if [ -f Package.resolved ]; then swift package resolve --force-resolved-versions; else swift package resolve; fi
COPY . .
RUN --mount=type=cache,target=/src/.build \
    swift build -c release --product filefleet --static-swift-stdlib \
 && install -m 0755 .build/release/filefleet /usr/local/bin/filefleet

FROM debian:bookworm-slim AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="filefleet" \
      org.opencontainers.image.description="Imports huge file trees into PostgreSQL with a fleet of stateless workers fed through Kafka, and keeps them in sync." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
# The packages of the libraries the binary and librdkafka name (ldd; libc6 is in the base), TLS
# roots, git for git mode. scripts/image-proof replays this stage in a debootstrap chroot and fails
# if a library is missing or comes from a package not named here.
# Not pinned: a pinned version leaves the mirror with the next security update.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      git \
      libgcc-s1 \
      liblz4-1 \
      libpq5 \
      libssl3 \
      libstdc++6 \
      libzstd1 \
      zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 filefleet \
 && useradd --no-log-init --uid 10001 --gid 10001 --create-home --home-dir /home/filefleet \
      --shell /usr/sbin/nologin filefleet
COPY --from=builder /usr/local/lib/librdkafka.so.1 /usr/local/lib/
RUN ldconfig
COPY --from=builder /usr/local/bin/filefleet /usr/local/bin/
USER 10001:10001
WORKDIR /home/filefleet
ENTRYPOINT ["filefleet"]
CMD ["--help"]
