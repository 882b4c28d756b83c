#!/usr/bin/env bash
# Sets up the native environment when needed, then runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"
ensure_native_env
cd "$PROJECT_ROOT"
exec "$PROJECT_ROOT/.venv/bin/python" -m pytest "$@"
