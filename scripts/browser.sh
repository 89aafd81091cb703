#!/usr/bin/env bash
# Installs Debian's chromium (headless, for the status-page test) when missing, and prints its
# path. Tests run in parallel: a lock makes the first one install and the others wait.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
find_browser() { command -v chromium || command -v chromium-browser || true; }
found="$(find_browser)"
if [ -z "$found" ]; then
  exec 9>/var/tmp/sluice-browser.lock
  flock 9
  found="$(find_browser)"
  if [ -z "$found" ]; then
    echo "installing chromium (apt) for the status-page test..." >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
    found="$(find_browser)"
  fi
fi
[ -n "$found" ] || { echo "chromium is not installed and could not be installed (apt-get install chromium)" >&2; exit 1; }
echo "$found"
