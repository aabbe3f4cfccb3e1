#!/usr/bin/env bash
# Gate a release of a chat-completions server on sgp-conformance, in any CI or on a laptop: the same steps as
# examples/ci/github-actions.yml.
#
#   SGP_BASE_URL=http://127.0.0.1:8000 SGP_API_KEY=... SERVER_CMD="./start-my-server" examples/ci/gate.sh
#
# Steps: start the server under test, wait until it accepts connections, run the suite (with the baseline of
# accepted deviations if there is one), put junit.xml and conformance.html where the CI uploads them, diff
# against the last release's conformance.json, and exit non-zero on a failure or a regression.
#
# Environment (defaults in brackets):
#   SGP_BASE_URL     the server's base URL (required)
#   SGP_API_KEY      its key (required; read from the environment only, never written to a file)
#   SERVER_CMD       command that starts the server under test; run in the background and stopped at the
#                    end [none: the server is already running]
#   WAIT_SECONDS     how long to wait for the server to accept connections [60]
#   BASELINE         accepted deviations [conformance/baseline.toml, where it exists]
#   LAST_RELEASE     the last release's conformance.json [last-release/conformance.json; skipped if missing]
#   REPORT_DIR       where the run writes its reports [reports]
#   ARTIFACTS_DIR    where junit.xml, conformance.html and conformance.json are copied for upload [artifacts]
#   SGP_RUN_ARGS     more arguments of `sgp-conformance run`, e.g. "--depth smoke" or "--clients" [none]
#   SGP_CONFORMANCE  the command [sgp-conformance]
#
# Exit codes: those of `sgp-conformance run` when it does not pass (1 not conformant, 2 usage error,
# 3 unreachable or key refused, 4 incomplete); else 1 when diff finds a regression or lost coverage, 2 when
# the last release's results cannot be compared (another target or profile); else 0.
set -uo pipefail

: "${SGP_BASE_URL:?set SGP_BASE_URL to the server under test, e.g. http://127.0.0.1:8000}"
: "${SGP_API_KEY:?set SGP_API_KEY to its key (it is read from the environment only)}"
SGP_CONFORMANCE=${SGP_CONFORMANCE:-sgp-conformance}
REPORT_DIR=${REPORT_DIR:-reports}
ARTIFACTS_DIR=${ARTIFACTS_DIR:-artifacts}
LAST_RELEASE=${LAST_RELEASE:-last-release/conformance.json}
WAIT_SECONDS=${WAIT_SECONDS:-60}
export SGP_API_KEY

# 1. start the server under test, stopped whatever happens next
server_pid=""
if [ -n "${SERVER_CMD:-}" ]; then
  bash -c "$SERVER_CMD" &
  server_pid=$!
  trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null' EXIT
fi

# 2. wait until it accepts connections (a refused connection is retried; anything that answers will do)
host_port=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p.hostname, p.port or (443 if p.scheme == "https" else 80))' "$SGP_BASE_URL")
waited=0
until python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()' $host_port 2>/dev/null; do
  if [ "$waited" -ge "$WAIT_SECONDS" ]; then
    echo "gate: $SGP_BASE_URL accepts no connection after ${WAIT_SECONDS}s" >&2
    exit 3
  fi
  sleep 1
  waited=$((waited + 1))
done

# 3. run the suite, with the baseline where there is one
baseline=()
if [ -n "${BASELINE:-}" ]; then
  baseline=(--baseline "$BASELINE")
elif [ -f conformance/baseline.toml ]; then
  baseline=(--baseline conformance/baseline.toml)
fi
# shellcheck disable=SC2086 # SGP_RUN_ARGS is a list of words
# (the ${a[@]+...} form: an empty array under `set -u` in the bash 3.2 of macOS)
"$SGP_CONFORMANCE" run --base-url "$SGP_BASE_URL" --report-dir "$REPORT_DIR" ${baseline[@]+"${baseline[@]}"} ${SGP_RUN_ARGS:-}
run_code=$?

# 4. the reports, for the CI to upload whatever the outcome (the HTML report shows why a run failed)
mkdir -p "$ARTIFACTS_DIR"
for name in junit.xml conformance.html conformance.json; do
  if [ -f "$REPORT_DIR/$name" ]; then cp "$REPORT_DIR/$name" "$ARTIFACTS_DIR/"; fi
done

# 5. compare with the last release
diff_code=0
if [ -f "$LAST_RELEASE" ] && [ -f "$REPORT_DIR/conformance.json" ]; then
  "$SGP_CONFORMANCE" diff "$LAST_RELEASE" "$REPORT_DIR/conformance.json" | tee "$ARTIFACTS_DIR/diff.txt"
  diff_code=${PIPESTATUS[0]}
else
  echo "gate: no $LAST_RELEASE: nothing to compare with"
fi

# 6. the verdict: the run's failure first, then a regression
if [ "$run_code" -ne 0 ]; then
  echo "gate: sgp-conformance run exited $run_code: see $ARTIFACTS_DIR/conformance.html" >&2
  exit "$run_code"
fi
if [ "$diff_code" -ne 0 ]; then
  echo "gate: sgp-conformance diff exited $diff_code: a regression against $LAST_RELEASE (see above)" >&2
  exit "$diff_code"
fi
echo "gate: conformant, and no regression against the last release"
