#!/usr/bin/env bash
# Sets up the native environment: pipenv (if missing) and the locked dependencies in <project>/.venv.
# Needs only Python 3.11 and Bash. Safe to run again.
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$PROJECT_ROOT"

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
    if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else
        echo "error: Python 3.11 is needed (found: $("$PYTHON" --version 2>&1))" >&2; exit 1
    fi
fi

# pipenv: the one this Python has, else one installed for this user (or into the active virtual environment).
# A system Python that refuses packages outside a virtual environment (PEP 668, e.g. Debian's python3.11) gets
# pipenv in a small environment of its own, .pipenv-tool/ in the project folder.
PIPENV_TOOL="$PROJECT_ROOT/.pipenv-tool"
PIPENV=("$PYTHON" -m pipenv)
if [ -x "$PIPENV_TOOL/bin/python" ] && "$PIPENV_TOOL/bin/python" -m pipenv --version >/dev/null 2>&1; then
    PIPENV=("$PIPENV_TOOL/bin/python" -m pipenv)
elif ! "$PYTHON" -m pipenv --version >/dev/null 2>&1; then
    echo "installing pipenv for $("$PYTHON" --version)..."
    if ! { "$PYTHON" -m pip install --quiet --user pipenv 2>/dev/null \
            || "$PYTHON" -m pip install --quiet pipenv 2>/dev/null; }; then
        # Typically a system Python that refuses them (PEP 668); were it anything else, the install below says so.
        echo "pipenv cannot be installed for this Python itself: installing it into $PIPENV_TOOL"
        "$PYTHON" -m venv --clear "$PIPENV_TOOL"
        "$PIPENV_TOOL/bin/python" -m pip install --quiet pipenv
        PIPENV=("$PIPENV_TOOL/bin/python" -m pipenv)
    fi
fi

# pipenv is given the interpreter's full path: a bare name such as python3 may be resolved by pipenv (or a
# version manager) to another Python than the 3.11 checked above.
PYTHON_PATH="$("$PYTHON" -c 'import sys; print(sys.executable)')"
export PIPENV_VENV_IN_PROJECT=1 PIPENV_VERBOSITY=-1 PIPENV_YES=1 PIPENV_NOSPIN=1
if [ -x .venv/bin/python ] && ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
    echo "replacing .venv: it was made with $(.venv/bin/python --version 2>&1), the project needs Python 3.11"
    rm -rf .venv
fi
"${PIPENV[@]}" --python "$PYTHON_PATH" sync --dev
"$PROJECT_ROOT/.venv/bin/python" -c "import redss_pipeline, temba_client" 
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"
lock_fingerprint > .venv/.synced-lock
echo "native environment ready: $PROJECT_ROOT/.venv"
