#!/usr/bin/env bash
# Installs the `openai` npm package (the TypeScript client of the client matrix, CLIENT-005) into the cache folder
# the suite reads (SGP_NODE_MODULES, default ~/.cache/sgp-conformance/node). Idempotent: with the package there,
# nothing is fetched (offline-safe); otherwise one bounded npm install.
set -euo pipefail

folder="${SGP_NODE_MODULES:-$HOME/.cache/sgp-conformance/node}"
if [ -f "$folder/node_modules/openai/package.json" ]; then
    exit 0
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "ensure-node-openai.sh: node and npm are needed for the TypeScript client (apt-get install nodejs npm)" >&2
    exit 1
fi
mkdir -p "$folder"
if ! timeout 300 npm install --prefix "$folder" --no-audit --no-fund --silent 'openai@^5' >&2; then
    echo "ensure-node-openai.sh: npm install openai failed (offline?): the client matrix test needs it in $folder" >&2
    exit 1
fi
