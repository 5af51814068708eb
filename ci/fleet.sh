#!/usr/bin/env bash
# The fleet nightly (ci/gitlab-ci.yml's fleet-shard and fleet-report jobs, ci/Jenkinsfile's fleet
# stages), in two steps:
#
#   ci/fleet.sh shard    one shard of the matrix, on a host taken from the inventory (host lease):
#                        JUnit and timelines in $WINDSOR_FLEET_OUT/shard-I/
#   ci/fleet.sh report   every shard merged ($WINDSOR_FLEET_OUT/all.xml; each case exactly once) and
#                        the sign-off report ($WINDSOR_FLEET_OUT/report/), with --previous from the
#                        history of earlier nights; then tonight's merge is added to the history
#
# Variables (all optional):
#   WINDSOR_RUNNER       this job's runner (GitLab: the parallel:matrix value; Jenkins: the branch)
#   WINDSOR_SHARDS       every runner of the matrix, in order, space-separated ("xen-1 xen-2"): the
#                        shard is I/N, I the position of WINDSOR_RUNNER in it, N its length. Without
#                        them: GitLab's CI_NODE_INDEX/CI_NODE_TOTAL (parallel: N), else 1/1
#   WINDSOR_INVENTORY    the hosts (default ci/hosts.toml); list them in the order of WINDSOR_SHARDS:
#                        shard I tries host I first, so each runner has its own host while all are free
#   WINDSOR_HOST         a host URL instead of inventory:$WINDSOR_INVENTORY
#   WINDSOR_HOST_WAIT    seconds to wait for a free host (default 1800, one lease TTL)
#   WINDSOR_FLEET_OUT    where shards and the report go (default out/fleet)
#   WINDSOR_HISTORY      a directory on the report's runner keeping every night's merge (default
#                        ~/.cache/windsor/history/<project>); when it has none, the last merge is
#                        fetched from GitLab (the previous fleet-report job's artifact, CI_JOB_TOKEN)
#   WINDSOR_HISTORY_KEEP how many earlier nights --previous gets, and the history keeps (default 14)
#   WINDSOR_PYTEST_ARGS  more pytest arguments (e.g. "--roles netback,blkback"), word-split
#   WINDSOR_VENV         the virtualenv (default .venv); WINDSOR_BOOTSTRAP=0 skips ci/bootstrap.sh
set -uo pipefail
shopt -s nullglob  # a glob that matches nothing is an empty list
cd "$(dirname "$0")/.." || exit 1
out=${WINDSOR_FLEET_OUT:-out/fleet}
bin=${WINDSOR_VENV:-.venv}/bin
keep=${WINDSOR_HISTORY_KEEP:-14}
say() { echo "fleet: $*" >&2; }

shard_spec() {  # I/N from the runner's place in WINDSOR_SHARDS, else GitLab's parallel: N, else 1/1
    local runners i
    read -r -a runners <<<"${WINDSOR_SHARDS:-}"
    if [ "${#runners[@]}" -gt 0 ]; then
        for i in "${!runners[@]}"; do
            if [ "${runners[$i]}" = "${WINDSOR_RUNNER:-}" ]; then
                echo "$((i + 1))/${#runners[@]}"
                return 0
            fi
        done
        say "WINDSOR_RUNNER '${WINDSOR_RUNNER:-}' is not in WINDSOR_SHARDS '${WINDSOR_SHARDS}': list every runner of the matrix there, in its order"
        return 2
    fi
    echo "${CI_NODE_INDEX:-1}/${CI_NODE_TOTAL:-1}"
}

previous() {  # the last $keep merges, oldest first, one per line (history dir, else GitLab's API)
    local history=$1 kept
    kept=("$history"/*.xml)  # nullglob: none is an empty list; names are our own timestamps, sorted
    if [ "${#kept[@]}" -gt 0 ]; then
        printf '%s\n' "${kept[@]}" | tail -n "$keep"
    elif [ -n "${CI_JOB_TOKEN:-}" ] && [ -n "${CI_API_V4_URL:-}" ] && [ -n "${CI_PROJECT_ID:-}" ]; then
        local ref=${CI_COMMIT_REF_NAME:-main} got="$out/previous-all.xml"
        if curl -fsS -o "$got" -H "JOB-TOKEN: $CI_JOB_TOKEN" \
            "$CI_API_V4_URL/projects/$CI_PROJECT_ID/jobs/artifacts/$ref/raw/$out/all.xml?job=${CI_JOB_NAME:-fleet-report}"; then
            echo "$got"
        else
            rm -f "$got"
            say "no previous merge from GitLab (first night, or its artifact expired): no --previous"
        fi
    fi
}

case "${1:-}" in
shard)
    [ "${WINDSOR_BOOTSTRAP:-1}" = 0 ] || bash ci/bootstrap.sh || exit $?
    spec=$(shard_spec) || exit $?
    dir="$out/shard-${spec%/*}"
    mkdir -p "$dir"
    say "shard $spec on runner ${WINDSOR_RUNNER:-?} -> $dir"
    status=0
    # shellcheck disable=SC2086  # WINDSOR_PYTEST_ARGS is word-split on purpose
    "$bin/pytest" suites --host "${WINDSOR_HOST:-inventory:${WINDSOR_INVENTORY:-ci/hosts.toml}}" \
        --shard "$spec" --host-wait "${WINDSOR_HOST_WAIT:-1800}" --seed "${WINDSOR_SEED:-0}" \
        ${CI_PIPELINE_ID:+--build-id "$CI_PIPELINE_ID"} --junitxml "$dir/junit.xml" \
        ${WINDSOR_PYTEST_ARGS:-} "${@:2}" || status=$?
    if [ "$status" = 5 ]; then  # every case of the matrix hashed to other shards
        say "shard $spec has no case of this matrix"
        status=0
    fi
    exit "$status"
    ;;
report)
    junits=("$out"/shard-*/junit.xml)
    if [ "${#junits[@]}" = 0 ]; then
        say "no $out/shard-*/junit.xml: did the shard jobs run, and keep their artifacts?"
        exit 1
    fi
    "$bin/windsor" merge "$out/all.xml" "${junits[@]}" || exit $?
    history=${WINDSOR_HISTORY:-$HOME/.cache/windsor/history/${CI_PROJECT_PATH_SLUG:-local}}
    mapfile -t earlier < <(previous "$history")
    args=("$out/all.xml" --out "$out/report")
    if [ "${#earlier[@]}" -gt 0 ]; then
        say "compared with ${#earlier[@]} earlier nights: ${earlier[*]}"
        args+=(--previous "${earlier[@]}")
    fi
    "$bin/windsor" report "${args[@]}" || exit $?
    if mkdir -p "$history" 2>/dev/null; then
        cp "$out/all.xml" "$history/$(date -u +%Y%m%dT%H%M%SZ)-${CI_PIPELINE_ID:-local}.xml"
        kept=("$history"/*.xml)
        printf '%s\n' "${kept[@]}" | head -n "-$keep" | xargs -r rm -f
    else
        say "cannot write the history $history: the next night has no --previous from it"
    fi
    ;;
*)
    echo "usage: ci/fleet.sh shard|report" >&2
    exit 2
    ;;
esac
