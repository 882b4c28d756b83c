#!/usr/bin/env bash
# Runs the whole pipeline offline on the bundled demo workspace:
# starts the bundled Rapid Pro-compatible server (a synthetic CSAP workspace on 127.0.0.1), then
# stage 1 (UUID table), stage 2 (fetch) and stage 3 (outputs) into a demo data root, and stops the server.
# Usage: demo.sh [<data-root>]   (default: demo-data/ in the project; a previous demo data root is replaced)
# DEMO_SEED and DEMO_SIZE (runs in the workspace) change the workspace.
set -euo pipefail
PROJECT_ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd -P)"
source "$PROJECT_ROOT/run_scripts/lib/runtime.sh"

data_root="$(absolute_path "${1:-$PROJECT_ROOT/demo-data}")"
if [ -e "$data_root" ]; then
    if [ -f "$data_root/.redss-demo" ]; then
        rm -rf "$data_root"
    else
        echo "error: $data_root exists and is not a demo data root; name another folder" >&2; exit 1
    fi
fi
mkdir -p "$data_root"
touch "$data_root/.redss-demo"

ensure_native_env
work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# A random token for this demo, kept in a file readable only by us (never on a command line).
umask 077
"$PROJECT_ROOT/.venv/bin/python" -c "import secrets; print(secrets.token_hex(20))" > "$work/token"
umask 022

echo "== starting the bundled Rapid Pro-compatible server (synthetic CSAP workspace)"
"$PROJECT_ROOT/.venv/bin/python" -m redss_pipeline.demo.rapid_pro_server \
    --seed "${DEMO_SEED:-2019}" --size "${DEMO_SIZE:-3000}" --port 0 --token-file "$work/token" \
    > "$work/server.log" 2>&1 &
server_pid=$!
server_url=""
for _ in $(seq 1 100); do
    server_url="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/server.log" | head -n 1 || true)"
    [ -n "$server_url" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "error: the demo server did not start" >&2; exit 1; }
    sleep 0.1
done
[ -n "$server_url" ] || { echo "error: the demo server did not report its address" >&2; exit 1; }
echo "   listening on $server_url"

echo "== stage 1: create the phone number <-> UUID table"
"$PROJECT_ROOT/run_scripts/1_create_uuid_table.sh" "$data_root"

echo "== stage 2: fetch raw data"
"$PROJECT_ROOT/run_scripts/2_fetch_raw_data.sh" demo@example.org "$work/rapid-pro-root" "$server_url" "@$work/token" "$data_root"

if [ -f "$PROJECT_ROOT/generate_outputs.py" ]; then
    echo "== stage 3: generate outputs"
    "$PROJECT_ROOT/run_scripts/3_generate_outputs.sh" demo@example.org "$data_root"
    echo "== coding: a simulated coder codes the exported Coda files (seeded, with a share of mistakes)"
    "$PROJECT_ROOT/.venv/bin/python" -m redss_pipeline.demo.simulated_coder "$data_root"
    echo "== coding: a second coder codes the ICR samples blind (seeded, disagreeing now and then)"
    "$PROJECT_ROOT/.venv/bin/python" -m redss_pipeline.demo.second_coder "$data_root"
    echo "== stage 3 again, with the coded files"
    "$PROJECT_ROOT/run_scripts/3_generate_outputs.sh" demo@example.org "$data_root"
fi

echo
echo "Demo finished. Data root: $data_root"
for path in "UUIDs" "Raw Data" "Outputs" "Outputs/Coda Files" "Outputs/ICR"; do
    [ -e "$data_root/$path" ] && echo "  $path/: $(ls "$data_root/$path" | tr '\n' ' ')"
done
if [ -f "$data_root/Outputs/Analysis/report.html" ]; then
    echo "  Outputs/Analysis/: the analysis tables, charts and maps (shareable copies in Outputs/Analysis/shareable/)"
    echo
    echo "Analysis report: $data_root/Outputs/Analysis/report.html"
fi
exit 0
