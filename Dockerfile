# syntax=docker/dockerfile:1
#
# docker build -t starforge-migrations .                      (pg_dump/pg_restore 15)
# docker build --build-arg PG_MAJOR=16 -t starforge-migrations .   (targets on PostgreSQL 16)
#
# PG_MAJOR must be at least the major version of every target server: pg_dump
# refuses to dump a newer server (preflight's backup-tooling check says so).
ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------- build
# Compile everything (tests and benchmarks too: the build stage is where they
# may run), then lay out the runtime files with the script the tests use.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY routes ./routes
COPY services ./services
COPY database ./database
COPY test ./test
COPY bench ./bench
COPY openapi ./openapi
COPY scripts ./scripts
COPY console ./console
# The service (tsc) and the web console (vite -> dist/console).
RUN npm run build
# Production dependencies only, no optional ones (no embedded PostgreSQL), no
# dist/test or dist/bench: see scripts/runtime-layout.sh.
RUN scripts/runtime-layout.sh /runtime

# ---------------------------------------------------------------- runtime
FROM ${NODE_IMAGE} AS runtime
ARG PG_MAJOR=15
# pg_dump / pg_restore of the targets' major version, from the PostgreSQL
# project's apt repository (Debian's own carries only one major per release).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
 && install -d /usr/share/postgresql-common/pgdg \
 && curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc https://www.postgresql.org/media/keys/ACCC4CF8.asc \
 && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" > /etc/apt/sources.list.d/pgdg.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" \
 && pg_dump --version | grep -q " ${PG_MAJOR}\." \
 && pg_restore --version | grep -q " ${PG_MAJOR}\." \
 && apt-get purge -y curl gnupg && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DATA_DIR=/var/lib/starforge
# The application belongs to root and is read-only for the service user; the
# only place it writes (backups, anything the deployment owns) is DATA_DIR.
WORKDIR /app
COPY --from=build /runtime /app
RUN groupadd --system --gid 10001 starforge \
 && useradd --system --uid 10001 --gid starforge --home-dir /var/lib/starforge --shell /usr/sbin/nologin starforge \
 && mkdir -p /var/lib/starforge && chown starforge:starforge /var/lib/starforge && chmod 0750 /var/lib/starforge \
 && chmod -R a-w /app
VOLUME ["/var/lib/starforge"]
USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "dist/src/healthcheck.js"]
CMD ["node", "dist/src/server.js"]
