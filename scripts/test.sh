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
# A Chinese font, so the browser tests' screenshots show text rather than boxes.
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || packages+=(fonts-wqy-microhei)
if ((${#packages[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing Debian packages: ${packages[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${packages[@]}"
fi

source scripts/python-env.sh
"$PY" -m pip install -q --disable-pip-version-check -e '.[test]'
"$PY" -m ruff check .
"$PY" -m mypy   # the packages of pyproject.toml [tool.mypy]
lint-imports --no-logo   # the layers and framework bans of pyproject.toml [tool.importlinter]
"$PY" -m pytest "$@"
