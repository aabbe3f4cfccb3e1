#!/usr/bin/env bash
# Installs Debian's Chromium and its ChromeDriver for the browser test of the HTML report, when missing.
# Idempotent and quiet; exits 0 when both are already there. Needs root (CI and the dev machines are).
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-chromium.sh: chromium/chromedriver missing and not root: run 'sudo apt-get install chromium chromium-driver'" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# fonts-liberation: without recommends there may be no font, and the screenshot shows boxes
apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-liberation >/dev/null
# a fresh install that still lacks either binary would fail the browser test with a less direct message
test -x /usr/bin/chromium && test -x /usr/bin/chromedriver
