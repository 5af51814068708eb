#!/usr/bin/env bash
# Nightly run on one runner: the whole matrix against $WINDSOR_HOST (default sim://), JUnit in out/,
# raw timelines in out/windsor-artifacts/, the sign-off report in out/report/.
# Usage: ci/nightly.sh [extra pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/bootstrap.sh
mkdir -p out
status=0
.venv/bin/pytest suites --host "${WINDSOR_HOST:-sim://}" --seed "${WINDSOR_SEED:-0}" \
    --junitxml "out/junit-${WINDSOR_SHARD:-0}.xml" "$@" || status=$?
.venv/bin/windsor compare out/junit-*.xml | tee out/compare.txt
# The sign-off report (out/report/index.html, report.md); WINDSOR_PREVIOUS="old1.xml old2.xml" (oldest
# first) adds REGR./fixed/drift against earlier runs. The tests' status stays the job's status.
# shellcheck disable=SC2086
.venv/bin/windsor report out/junit-*.xml --out out/report ${WINDSOR_PREVIOUS:+--previous $WINDSOR_PREVIOUS} \
    || echo "nightly: windsor report failed" >&2
exit "$status"
