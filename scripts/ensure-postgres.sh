#!/usr/bin/env bash
# Make sure PostgreSQL's server binaries are installed (Debian package), for the ledger's
# PostgreSQL tests. The tests start and stop their own server on 127.0.0.1.
set -euo pipefail
if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "PostgreSQL is not installed and this user cannot install it; its tests will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql >/dev/null
