# The control plane: one static-ish binary plus the pages and noVNC (from npm, pinned by
# static/package-lock.json). Build from the repository root:
#   docker build -f docker/control-plane.Dockerfile -t streamspace/control-plane .
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p streamspace-control-plane

FROM node:20-bookworm-slim AS pages
WORKDIR /static
COPY static/package.json static/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY static/ ./

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/streamspace-control-plane /usr/local/bin/
COPY --from=pages /static /usr/share/streamspace/static
ENV STATIC_DIR=/usr/share/streamspace/static LISTEN_ADDR=0.0.0.0:8080
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/streamspace-control-plane"]
