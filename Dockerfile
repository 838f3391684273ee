# The operator's image: one binary on a distroless base (glibc, CA certificates, user 65532, no shell).
#
#   docker build -t camunda-backup-operator:dev .
#   podman build -t camunda-backup-operator:dev .
#
# Multi-stage: `compile` builds the release binary with cargo (needs the internet: crates.io and the
# base images), the final stage copies it onto RUNTIME_IMAGE. The release workflow
# (.github/workflows/release.yml) builds this file for linux/amd64 and linux/arm64.
#
# Without a registry or the internet (scripts/image.sh, with buildah): BINARY_STAGE=prebuilt takes the
# binary from the build context (target/release/camunda-backup-operator, built on the host) instead,
# and RUNTIME_IMAGE is a local base built FROM scratch out of the host's Debian packages. Builders that
# skip unused stages (BuildKit, buildah >= 1.25) then never pull BUILDER_IMAGE.

# The toolchain: the workspace's rust-version, on the same Debian release as the runtime's glibc.
ARG BUILDER_IMAGE=docker.io/library/rust:1.89-bookworm
# glibc, libgcc_s, CA certificates, /etc/passwd with nonroot (65532), /tmp; no shell or package manager.
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# `compile` (default) or `prebuilt`.
ARG BINARY_STAGE=compile

FROM ${BUILDER_IMAGE} AS compile
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p camunda-backup-operator \
 && strip -o /camunda-backup-operator target/release/camunda-backup-operator

# The binary from the build context: scripts/image.sh puts a stripped host build there.
FROM scratch AS prebuilt
COPY target/release/camunda-backup-operator /camunda-backup-operator

FROM ${BINARY_STAGE} AS binary

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="camunda-backup-operator" \
      org.opencontainers.image.description="Consistent, rate-limited, retained backups of Camunda 8 clusters on Kubernetes" \
      org.opencontainers.image.source="https://github.com/camunda-backup-operator/camunda-backup-operator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binary /camunda-backup-operator /camunda-backup-operator
# The chart's securityContext (runAsNonRoot, runAsUser 65532) matches; numeric, so runAsNonRoot can be
# verified without /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/camunda-backup-operator"]
