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
# The real-Xen lab (tests marked `lab`) needs QEMU, debootstrap, cpio, kmod and ssh on the host.
missing=0
for tool in qemu-system-x86_64 debootstrap cpio depmod ssh gcc; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || missing=1
done
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || missing=1  # gcc -static needs libc6-dev
if [ "$missing" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing the lab's host packages (harness/lab/build.py LAB_APT)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        qemu-system-x86 debootstrap cpio kmod openssh-client gcc libc6-dev >/dev/null
fi
# windsor report's page is checked in a real headless browser (tests/test_report.py): Debian's chromium.
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing chromium (the report page's browser check)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
echo "bootstrap: .venv ready ($(.venv/bin/python --version))"
