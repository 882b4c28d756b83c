#!/usr/bin/env bash
# Sets up the native environment: pipenv (if missing) and the locked dependencies in <project>/.venv.
# Needs only Python 3.11 and Bash. Safe to run again.
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd -P)"
cd "$PROJECT_ROOT"

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
    if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else
        echo "error: Python 3.11 is needed (found: $("$PYTHON" --version 2>&1))" >&2; exit 1
    fi
fi

# pipenv: the one this Python has; else the one a previous run put in .pipenv-tool/; else one installed for this
# user (or into the active virtual environment). Where pip cannot install it for the Python itself (typically a
# system Python that refuses pip installs outside a virtual environment, PEP 668, as Debian's python3.11 does),
# pipenv goes into a small environment of its own, .pipenv-tool/ in the project folder (on Debian this needs the
# python3.11-venv package).
PIPENV_TOOL="$PROJECT_ROOT/.pipenv-tool"
if "$PYTHON" -m pipenv --version >/dev/null 2>&1; then
    PIPENV=("$PYTHON" -m pipenv)
elif [ -x "$PIPENV_TOOL/bin/python" ] && "$PIPENV_TOOL/bin/python" -m pipenv --version >/dev/null 2>&1; then
    PIPENV=("$PIPENV_TOOL/bin/python" -m pipenv)
else
    echo "installing pipenv for $("$PYTHON" --version)..."
    PIPENV=("$PYTHON" -m pipenv)
    if ! { "$PYTHON" -m pip install --quiet --user pipenv 2>/dev/null \
            || "$PYTHON" -m pip install --quiet pipenv 2>/dev/null; }; then
        echo "pip did not install pipenv for $PYTHON (a system Python may refuse to): installing it into $PIPENV_TOOL"
        "$PYTHON" -m venv --clear "$PIPENV_TOOL"
        "$PIPENV_TOOL/bin/python" -m pip install --quiet pipenv  # a network failure shows here, in pip's words
        PIPENV=("$PIPENV_TOOL/bin/python" -m pipenv)
    fi
fi

# pipenv is given the interpreter's full path: a bare name such as python3 may be resolved by pipenv (or a
# version manager) to another Python than the 3.11 checked above.
PYTHON_PATH="$("$PYTHON" -c 'import sys; print(sys.executable)')"
# The project's environment is .venv/ in the project folder, even when another virtual environment is active.
export PIPENV_VENV_IN_PROJECT=1 PIPENV_IGNORE_VIRTUALENVS=1 PIPENV_VERBOSITY=-1 PIPENV_YES=1 PIPENV_NOSPIN=1
if [ -x .venv/bin/python ] && ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
    echo "replacing .venv: it was made with $(.venv/bin/python --version 2>&1), the project needs Python 3.11"
    rm -rf .venv
fi
"${PIPENV[@]}" --python "$PYTHON_PATH" sync --dev
"$PROJECT_ROOT/.venv/bin/python" -c "import redss_pipeline, temba_client" 
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"
lock_fingerprint > .venv/.synced-lock
echo "native environment ready: $PROJECT_ROOT/.venv"
