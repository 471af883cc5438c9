#!/usr/bin/env bash
# Installs what bench/run.py needs: dnsperf (required), dnsmasq and unbound (peers, optional).
# Never starts a system service and never touches port 53: services the packages enable are
# stopped and disabled right after installation.
set -u

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
UPDATED=0

install_pkg() {  # install_pkg COMMAND PACKAGE...
    local cmd=$1; shift
    if command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ]; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "bench/setup.sh: $cmd is missing and apt-get is not available; install $* by hand"
        return 1
    fi
    if [ "$UPDATED" -eq 0 ]; then
        $SUDO apt-get update -qq >/dev/null 2>&1 || true
        UPDATED=1
    fi
    # policy-rc.d 101 keeps maintainer scripts from starting the services.
    local policy=/usr/sbin/policy-rc.d created=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy"
        created=1
    fi
    if $SUDO apt-get install -y -qq "$@" >/dev/null 2>&1; then
        echo "bench/setup.sh: installed $*"
    else
        echo "bench/setup.sh: could not install $*"
    fi
    if [ "$created" -eq 1 ]; then $SUDO rm -f "$policy"; fi
    for unit in dnsmasq unbound; do
        if command -v systemctl >/dev/null 2>&1; then
            $SUDO systemctl stop "$unit" >/dev/null 2>&1 || true
            $SUDO systemctl disable "$unit" >/dev/null 2>&1 || true
        fi
    done
    command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ]
}

install_pkg dnsperf dnsperf || { echo "bench/setup.sh: dnsperf is required"; exit 1; }
# dnsmasq-base is the binary without the system service.
install_pkg dnsmasq dnsmasq-base \
    || echo "bench/setup.sh: dnsmasq unavailable: it is skipped as a peer (Python fake upstream used)"
install_pkg unbound unbound || echo "bench/setup.sh: unbound unavailable: it is skipped as a peer"
exit 0
