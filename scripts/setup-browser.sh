#!/usr/bin/env bash
# Debian's Chromium for the web app's browser tests (driven by Playwright, never a downloaded
# browser). Installs it when missing; needs root (apt-get).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "Chromium is missing; run as root: scripts/setup-browser.sh" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium
