# syntax=docker/dockerfile:1
# One image for every role: `serve` (default), `worker`, `migrate`. Build: docker build -t otp-orchestrator .
# Runs as uid 10001 on a read-only root filesystem; only /tmp (an emptyDir in the chart) need be writable, and
# nothing is written there either. node is PID 1 and handles SIGTERM itself (a graceful drain, then exit 0).

ARG NODE_IMAGE=node:24.11-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY scripts/build.mjs scripts/build.mjs
COPY gen gen
COPY src src
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts

FROM ${NODE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="otp-orchestrator" \
      org.opencontainers.image.description="Self-hosted OTP orchestration layer: explicit routing, estimate → send → track, multi-channel fallback" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="UNLICENSED" \
      org.opencontainers.image.source="https://github.com/otp-orchestrator/otp-orchestrator"
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only to the service: it can change none of its own code.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
# The bundles and, beside them, the dashboard's page and script (dist/assets).
COPY --from=build /app/dist dist
COPY bin bin
USER 10001:10001
# gRPC (mesh), HTTP (Connect, gRPC-Web, webhooks, /dashboard, /metrics), the worker's health port.
EXPOSE 9090 8080 8081
ENTRYPOINT ["node", "bin/otp-orchestrator.js"]
CMD ["serve"]
