#!/usr/bin/env bash
# Make .venv with the harness installed (editable) and its dev tools. Safe to run again.
# Needs Python >= 3.11; on Debian, installs python3-venv first if root and it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "bootstrap: need Python >= 3.11 as '$PY' (set PYTHON=...)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$PY" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            "$PY" -m venv .venv
        else
            echo "bootstrap: '$PY -m venv' failed: install python3-venv (apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
fi
# The real-Xen lab (tests marked `lab`) needs QEMU (and qemu-img), debootstrap, cpio, kmod and ssh on the host.
missing=0
for tool in qemu-system-x86_64 qemu-img debootstrap cpio depmod ssh gcc; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing=1
done
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || missing=1  # gcc -static needs libc6-dev
if [ "$missing" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing the lab's host packages (harness/lab/build.py LAB_APT)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        qemu-system-x86 qemu-utils debootstrap cpio kmod openssh-client gcc libc6-dev >/dev/null
fi
# windsor report's page is checked in a real headless browser (tests/test_report.py): Debian's chromium.
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing chromium (the report page's browser check)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# The fleet pipeline (ci/gitlab-ci.yml) is run here by gitlab-ci-local (tests/test_fleet.py): it needs
# Node and npm, and rsync (it copies the checkout). 4.56.2 is the last release for Node < 22 (Debian
# 12 has 18). Installed into ~/.cache/windsor/gitlab-ci-local (WINDSOR_GLCI_DIR), never globally.
GLCI_VERSION=4.56.2
glci_dir=${WINDSOR_GLCI_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/windsor/gitlab-ci-local}
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    pkgs=()
    command -v rsync >/dev/null || pkgs+=(rsync)
    command -v node >/dev/null || pkgs+=(nodejs)
    command -v npm >/dev/null || pkgs+=(npm)
    if [ "${#pkgs[@]}" -gt 0 ]; then
        echo "bootstrap: installing ${pkgs[*]} (gitlab-ci-local, for the fleet pipeline's test)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
    fi
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "bootstrap: no node/npm, so no gitlab-ci-local: the fleet pipeline test is skipped (apt-get install nodejs npm)"
elif [ "$("$glci_dir/node_modules/.bin/gitlab-ci-local" --version 2>/dev/null)" != "$GLCI_VERSION" ]; then
    echo "bootstrap: installing gitlab-ci-local $GLCI_VERSION into $glci_dir"
    mkdir -p "$glci_dir"
    npm install --prefix "$glci_dir" --no-audit --no-fund --loglevel=error "gitlab-ci-local@$GLCI_VERSION" >/dev/null \
        || echo "bootstrap: gitlab-ci-local did not install: the fleet pipeline test is skipped" >&2
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
echo "bootstrap: .venv ready ($(.venv/bin/python --version))"
