# One image for every role: `sluice serve --role=ingest|api|worker|all`.

# Build stage: bundle the sluice command (npm run build), which needs the dev dependencies.
# zstd-napi (stored payloads) fetches its prebuilt binary from its GitHub release at
# `npm ci`; a build without that network compiles it instead, which needs
# `apt-get install python3 make g++` in both stages.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY apps/server/package.json apps/server/
COPY packages/protocol/package.json packages/protocol/
COPY packages/grouping/package.json packages/grouping/
COPY packages/db/package.json packages/db/
COPY packages/queue/package.json packages/queue/
COPY packages/alert-rules/package.json packages/alert-rules/
COPY packages/storage/package.json packages/storage/
COPY packages/sourcemaps/package.json packages/sourcemaps/
COPY packages/migration-lint/package.json packages/migration-lint/
RUN npm ci --no-audit --no-fund
COPY . .
# The commit nodes report (sluice_nodes, sluice_build_info, and the release cut
# from it): .dockerignore leaves .git out, so pass it in:
#   docker build --build-arg SLUICE_COMMIT=$(git rev-parse HEAD) .
ARG SLUICE_COMMIT=""
RUN npm run build

# Runtime: production dependencies, the migrations and the bundle; no sources, no tsx loader.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY apps/server/package.json apps/server/
COPY packages/protocol/package.json packages/protocol/
COPY packages/grouping/package.json packages/grouping/
COPY packages/db/package.json packages/db/
COPY packages/queue/package.json packages/queue/
COPY packages/alert-rules/package.json packages/alert-rules/
COPY packages/storage/package.json packages/storage/
COPY packages/sourcemaps/package.json packages/sourcemaps/
COPY packages/migration-lint/package.json packages/migration-lint/
RUN npm ci --omit=dev --no-audit --no-fund
COPY migrations migrations
COPY --from=build /app/apps/server/dist apps/server/dist
USER node
# Traffic, and /metrics on its own port (SLUICE_METRICS_PORT).
EXPOSE 8000 9464
# Memory (bench/RESULTS.md): two malloc arenas instead of one per thread, and a
# 4 MiB young generation, cut peak RSS by a quarter at the same throughput.
ENV MALLOC_ARENA_MAX=2
# Exec form, so the node process itself receives SIGTERM and drains.
ENTRYPOINT ["node", "--max-semi-space-size=16", "apps/server/dist/sluice.mjs"]
CMD ["serve", "--role=all"]
