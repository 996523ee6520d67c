# The agent, for PLATFORM=kubernetes (in the cluster) and PLATFORM=docker (with the engine's
# socket mounted). The local platform runs on a host with Xvnc installed, not in this image.
# Build from the repository root:
#   docker build -f docker/k8s-agent.Dockerfile -t streamspace/k8s-agent .
# Or from a binary built on the host (`cargo build --release`), where no Rust image can be
# pulled:
#   docker build -f docker/k8s-agent.Dockerfile --target prebuilt -t streamspace/k8s-agent .
# BASE and RUST name the images the stages start from.
ARG BASE=debian:bookworm-slim
ARG RUST=rust:1.95-bookworm

# What the binary needs to run, as a non-root user.
FROM ${BASE} AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
ENV PLATFORM=kubernetes HEALTH_ADDR=0.0.0.0:8081
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/streamspace-k8s-agent"]

FROM runtime AS prebuilt
ARG PROFILE=release
COPY target/${PROFILE}/streamspace-k8s-agent /usr/local/bin/

FROM ${RUST} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p streamspace-k8s-agent --bin streamspace-k8s-agent

FROM runtime
COPY --from=build /src/target/release/streamspace-k8s-agent /usr/local/bin/
