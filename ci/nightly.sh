#!/usr/bin/env bash
# The main job, as the nightly CI and README's quick start run it: the whole matrix against
# $WINDSOR_HOST (default sim://), JUnit in out/, raw timelines in out/windsor-artifacts/, and the
# sign-off report in out/report/ — written whatever the tests' outcome. Exits with the tests' status.
# Usage: ci/nightly.sh [extra pytest args...]; WINDSOR_OUT=DIR writes there instead of out/;
# WINDSOR_BOOTSTRAP=0 skips ci/bootstrap.sh (a .venv that is ready already).
set -uo pipefail
cd "$(dirname "$0")/.."
[ "${WINDSOR_BOOTSTRAP:-1}" = 0 ] || bash ci/bootstrap.sh || exit $?
out=${WINDSOR_OUT:-out}
mkdir -p "$out"
status=0
.venv/bin/pytest suites --host "${WINDSOR_HOST:-sim://}" --seed "${WINDSOR_SEED:-0}" \
    --junitxml "$out/junit-${WINDSOR_SHARD:-0}.xml" "$@" || status=$?
# The sign-off report (out/report/index.html, report.md); WINDSOR_PREVIOUS="old1.xml old2.xml" (oldest
# first) adds REGR./fixed/drift against earlier runs. A failing run is exactly when it matters.
# shellcheck disable=SC2086
.venv/bin/windsor report "$out"/junit-*.xml --out "$out/report" ${WINDSOR_PREVIOUS:+--previous $WINDSOR_PREVIOUS} \
    || echo "nightly: windsor report failed" >&2
.venv/bin/windsor compare "$out"/junit-*.xml > "$out/compare.txt" || echo "nightly: windsor compare failed" >&2
echo "nightly: report in $out/report/index.html (and report.md); tests exited $status"
exit "$status"
