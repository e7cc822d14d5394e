#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what the tests need
# (Debian packages, then the project with its test extras), lints, then runs pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k cnmarc).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: yaz (yaz-marcdump, yaz-client, yaz-ztest), idzebra-2.0,
# redis-server (sessions shared between processes), postgresql (the ILL tests run on it as
# well as on SQLite) - the tests start their own servers on free loopback ports - and
# chromium (the browser tests drive it headless through Playwright).
packages=()
command -v yaz-marcdump >/dev/null 2>&1 || packages+=(yaz)
command -v zebrasrv >/dev/null 2>&1 || packages+=(idzebra-2.0)
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || packages+=(postgresql)
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
# The deployment kit's checks (tests/deploy): nginx -t and a running nginx on the proxy
# sample, systemd-analyze verify on the units, logrotate on its snippet, openssl for a
# self-signed certificate, sqlite3 for the backup's online copies, shellcheck on the
# backup scripts.
{ [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1; } || packages+=(nginx-light)
command -v systemd-analyze >/dev/null 2>&1 || packages+=(systemd)
{ [ -x /usr/sbin/logrotate ] || command -v logrotate >/dev/null 2>&1; } || packages+=(logrotate)
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
command -v sqlite3 >/dev/null 2>&1 || packages+=(sqlite3)
command -v shellcheck >/dev/null 2>&1 || packages+=(shellcheck)
# A Chinese font, so the browser tests' screenshots show text rather than boxes.
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || packages+=(fonts-wqy-microhei)
if ((${#packages[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing Debian packages: ${packages[*]}"
    $sudo apt-get update -q
    # The tests start their own servers on free loopback ports: keep the packages' own
    # services (nginx on :80, redis, postgresql) from being started by their install
    # scripts, which fail where the port is taken (Debian's policy-rc.d, exit 101 = deny).
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod 755 "$policy"
    fi
    status=0
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${packages[@]}" || status=$?
    [ -z "$policy" ] || $sudo rm -f "$policy"
    [ "$status" -eq 0 ] || exit "$status"
fi

source scripts/python-env.sh
"$PY" -m pip install -q --disable-pip-version-check -e '.[test]'
"$PY" -m ruff check .
"$PY" -m mypy   # the packages of pyproject.toml [tool.mypy]
lint-imports --no-logo   # the layers and framework bans of pyproject.toml [tool.importlinter]
"$PY" -m pytest "$@"
