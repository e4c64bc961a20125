#!/usr/bin/env bash
# Regenerates include/ascend_ptq.h from src/capi with cbindgen (through the header test).
set -euo pipefail
cd "$(dirname "$0")/.."
UPDATE_HEADER=1 cargo test --quiet --test c_header
echo "include/ascend_ptq.h regenerated"
