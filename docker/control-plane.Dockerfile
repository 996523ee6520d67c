# The control plane: one binary plus the pages and noVNC (from npm, pinned by
# static/package-lock.json). Build from the repository root:
#   docker build -f docker/control-plane.Dockerfile -t streamspace/control-plane .
# Or from binaries built on the host (`cargo build --release`, `npm ci` in static/), where no
# Rust or Node image can be pulled:
#   docker build -f docker/control-plane.Dockerfile --target prebuilt -t streamspace/control-plane .
# BASE, RUST and NODE name the images the stages start from.
ARG BASE=debian:bookworm-slim
ARG RUST=rust:1.95-bookworm
ARG NODE=node:20-bookworm-slim

# What the binary needs to run, as a non-root user.
FROM ${BASE} AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
ENV STATIC_DIR=/usr/share/streamspace/static LISTEN_ADDR=0.0.0.0:8080 \
    RECORDING_DIR=/var/lib/streamspace/recordings
# Recordings are written here: a volume (the chart mounts one; shared by every replica).
RUN mkdir -p /var/lib/streamspace/recordings && chown 65532:65532 /var/lib/streamspace/recordings
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/streamspace-control-plane"]

FROM runtime AS prebuilt
ARG PROFILE=release
COPY target/${PROFILE}/streamspace-control-plane /usr/local/bin/
COPY static /usr/share/streamspace/static

FROM ${RUST} AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p streamspace-control-plane

FROM ${NODE} AS pages
WORKDIR /static
COPY static/package.json static/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY static/ ./

FROM runtime
COPY --from=build /src/target/release/streamspace-control-plane /usr/local/bin/
COPY --from=pages /static /usr/share/streamspace/static
