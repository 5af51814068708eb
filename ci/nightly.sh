#!/usr/bin/env bash
# Nightly run on one runner: the whole matrix against $WINDSOR_HOST (default sim://), JUnit in out/.
# Usage: ci/nightly.sh [extra pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/bootstrap.sh
mkdir -p out
status=0
.venv/bin/pytest suites --host "${WINDSOR_HOST:-sim://}" --seed "${WINDSOR_SEED:-0}" \
    --junitxml "out/junit-${WINDSOR_SHARD:-0}.xml" "$@" || status=$?
.venv/bin/windsor compare out/junit-*.xml | tee out/compare.txt
exit "$status"
