# expect: hadolint: DL3015
# The runtime stage without --no-install-recommends: git's recommends (patch, less, an ssh
# client) land in the image: packages that neither the binary nor the proof asked for.
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y \
      ca-certificates \
      git \
      libpq5 \
 && rm -rf /var/lib/apt/lists/*
USER 10001:10001
ENTRYPOINT ["filefleet"]
