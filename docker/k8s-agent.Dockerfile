# The agent for PLATFORM=kubernetes. (The local platform runs on a host with Xvnc installed,
# not in this image.) Build from the repository root:
#   docker build -f docker/k8s-agent.Dockerfile -t streamspace/k8s-agent .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p streamspace-k8s-agent --bin streamspace-k8s-agent

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/streamspace-k8s-agent /usr/local/bin/
ENV PLATFORM=kubernetes HEALTH_ADDR=0.0.0.0:8081
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/streamspace-k8s-agent"]
