# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with the dev toolchain.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY routes ./routes
COPY services ./services
COPY database ./database
COPY test ./test
COPY bench ./bench
COPY console ./console
COPY scripts ./scripts
# The service (tsc) and the web console (vite -> dist/console).
RUN npm run build

# Runtime stage: production dependencies and compiled output only.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DATA_DIR=/var/lib/starforge
# pg_dump / pg_restore 15 for verified backups (the targets run PostgreSQL 15).
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 curl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY database ./database
COPY openapi ./openapi
RUN groupadd --system starforge && useradd --system --gid starforge --home /app starforge \
 && mkdir -p /var/lib/starforge && chown starforge:starforge /var/lib/starforge
USER starforge
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${PORT}/healthz" || exit 1
CMD ["node", "dist/src/server.js"]
