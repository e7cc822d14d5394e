# Sourced by scripts/test.sh and scripts/demo.sh: sets PY to a Python that may install
# the project, and puts its scripts (balis, lint-imports) first on PATH.
#
# A stock Debian or Ubuntu Python refuses `pip install` outside a virtual environment
# (PEP 668, its EXTERNALLY-MANAGED marker), so there the project goes into .venv in the
# repository, made once. Any other Python (pyenv, a venv already active, a container's
# own build) is used as it is.

_externally_managed() {
    python3 - <<'PYTHON'
import os, sys, sysconfig
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
sys.exit(0 if os.path.exists(marker) and sys.prefix == sys.base_prefix else 1)
PYTHON
}

if _externally_managed; then
    if [ ! -x .venv/bin/python ]; then
        if ! python3 -m venv .venv 2>/dev/null; then
            # Debian ships venv's pip bootstrap separately.
            rm -rf .venv
            sudo=""
            [ "$(id -u)" -eq 0 ] || sudo="sudo"
            echo "installing Debian package: python3-venv"
            $sudo apt-get update -q
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends python3-venv
            python3 -m venv .venv
        fi
        echo "the system Python installs nothing outside a virtual environment: using .venv"
    fi
    PY="$PWD/.venv/bin/python"
    export PATH="$PWD/.venv/bin:$PATH"
else
    PY=python3
fi
