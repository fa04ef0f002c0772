#!/usr/bin/env bash
# The runbook's preflight helper (RUNBOOK-apply-migrations.md, "Run preflight
# locally"): connectivity, pending migrations, a rehearsal (up, down, up) on a
# throw-away copy with the smoke ETL where the target has one, lint, and the
# target checks (each extension a pending migration creates, pgcrypto
# included), for one environment of MIGRATION_CONFIG (default
# database/migration-config.js). Steps a project does not use say SKIP.
# Nothing is applied to the target.
#
#   PRODUCTION_DATABASE_URL=postgres://... scripts/migrate-preflight.sh --environment production
#   scripts/migrate-preflight.sh --environment staging --format md --output preflight.md
#
# The rehearsal copy lives on PREFLIGHT_DATABASE_URL's server when set (a
# scratch server you may create databases on), else on a private embedded
# PostgreSQL started for this run.
#
# Exit codes: 0 clean, 1 findings (errors; warnings too with --strict),
# 2 usage or configuration error, 3 the database could not be reached,
# 4 the preflight itself broke.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ ! -d node_modules ]; then
  echo "node_modules is missing: run 'npm ci' first" >&2
  exit 2
fi
node scripts/ensure-build.mjs >&2
exec node dist/src/scripts/preflight.js "$@"
