#!/usr/bin/env bash
# Sets up the native environment when needed, lints (ruff) and type-checks (mypy) the project, then runs the whole
# test suite. Extra arguments go to pytest. A lint or type error stops here, before the tests, with a non-zero exit.
# The docker tests (marked `docker`: the image built and the stages run in containers) run only when a Docker
# engine answers; otherwise one line says they were left out. Likewise for the report's browser test and chromium.
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd -P)"
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"
ensure_native_env
cd "$PROJECT_ROOT"

# Lint and import order, then the type check of src/ and bench/ (configured in pyproject.toml); each prints one
# summary line.
"$PROJECT_ROOT/.venv/bin/ruff" check .
"$PROJECT_ROOT/.venv/bin/mypy"

selection=()
if ! command -v docker >/dev/null 2>&1 || ! timeout 20 docker info >/dev/null 2>&1; then
    echo "docker tests left out: no Docker engine answers (docker info); see the README's Docker section"
    selection=(-m "not docker")
fi
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    echo "browser test of the analysis report skipped: no chromium (Debian: apt-get install chromium)"
fi
exec "$PROJECT_ROOT/.venv/bin/python" -m pytest "${selection[@]}" "$@"
