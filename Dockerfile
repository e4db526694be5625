# Two images from one file:
#   app (the default, last stage): every Node service; docker-compose.yml picks the entry point.
#   temporal: the Temporal dev server, built from the CLI source with `go install`, as
#             stack/components/temporal.sh builds it natively, so both paths run the same binary.

# ---- Temporal dev server --------------------------------------------------------------------
# CLI v1.5.x needs Go 1.25. Tags v1.6.0 and later cannot be built with `go install pkg@version`
# (their go.mod has a replace directive).
FROM golang:1.25-bookworm AS temporal-build
ARG TEMPORAL_CLI_VERSION
RUN test -n "$TEMPORAL_CLI_VERSION" || { echo 'pass --build-arg TEMPORAL_CLI_VERSION (stack/versions.env)' >&2; exit 1; }
RUN CGO_ENABLED=0 GOBIN=/out go install "github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}"

FROM debian:bookworm-slim AS temporal
ARG TEMPORAL_CLI_VERSION
LABEL org.opencontainers.image.title="temporal dev server" \
      org.opencontainers.image.version="${TEMPORAL_CLI_VERSION}"
# The SQLite file lives in /var/lib/temporal; a named volume mounted there starts out owned by temporal.
RUN useradd --uid 1000 --create-home temporal \
    && mkdir -p /var/lib/temporal \
    && chown temporal:temporal /var/lib/temporal
COPY --from=temporal-build /out/temporal /usr/local/bin/temporal
USER temporal
WORKDIR /var/lib/temporal
EXPOSE 7233 8233
ENTRYPOINT ["temporal"]
CMD ["server", "start-dev", "--ip", "0.0.0.0", "--ui-ip", "0.0.0.0", "--db-filename", "/var/lib/temporal/temporal.db"]

# ---- Node services ---------------------------------------------------------------------------
FROM node:20-bookworm AS app-build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# Prisma 7's client needs no engine binary; pointing the schema engine at /bin/false keeps
# `generate` from downloading one.
RUN PRISMA_SCHEMA_ENGINE_BINARY=/bin/false npx prisma generate \
    && npm run build \
    && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim AS app
ENV NODE_ENV=production
WORKDIR /app
COPY --from=app-build /app/package.json /app/package-lock.json ./
COPY --from=app-build /app/node_modules ./node_modules
COPY --from=app-build /app/dist ./dist
# `node dist/ops/cli.js setup` applies prisma/migrations/*/migration.sql, read relative to /app.
COPY --from=app-build /app/prisma ./prisma
# `node dist/ops/cli.js connect register` reads the connector configs from /app/connectors.
COPY --from=app-build /app/connectors ./connectors
USER node
EXPOSE 3000 3001 3002
CMD ["node", "dist/api/main.js"]
