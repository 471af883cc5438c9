#!/usr/bin/env bash
# Debian's PostgreSQL server for the query log's tests against a real database
# (tests/integration/postgres.py starts a throw-away cluster with its binaries; no service is
# started here). Installs the package when its binaries are missing; needs root (apt-get).
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "PostgreSQL is missing; run as root: scripts/setup-postgres.sh" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
ls -d /usr/lib/postgresql/*/bin
