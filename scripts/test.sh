#!/usr/bin/env bash
# The whole test suite, from a fresh clone: fetches the real assets (cached, sha256-checked),
# sets up the ONNX Runtime oracle venv, then runs every Rust test, the oracle comparisons and
# the C programs under ffi/. Assets and the oracle are required here: nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
scripts/fetch-assets.sh
py=$(scripts/setup-venv.sh)
# ONNX node conformance cases, generated from the onnx wheel (cached by onnx version).
"$py" tests/oracle/gen_node_cases.py "${ASCEND_PTQ_ASSETS:-assets}/onnx-node-cases"
command -v cc >/dev/null || { echo "test.sh: a C compiler (cc) is needed for the ffi/ tests: apt-get install gcc" >&2; exit 1; }
# tests/acl_bindings.rs regenerates src/device/acl/sys.rs with bindgen, which loads libclang
# (and needs clang's stddef.h) at run time.
if ! ldconfig -p | grep 'libclang\(-[0-9.]*\)\?\.so' >/dev/null || ! compgen -G '/usr/lib/llvm-*/lib/clang/*/include/stddef.h' >/dev/null; then
  echo "test.sh: installing libclang for the ACL bindings test" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  pkgs="libclang1-14 libclang-common-14-dev"
  $sudo apt-get install -y $pkgs >&2 || { $sudo apt-get update >&2 && $sudo apt-get install -y $pkgs >&2; }
fi
# tests/browser_check.rs and tests/sim_flow.rs load HTML reports in headless Chromium.
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  echo "test.sh: installing chromium for the HTML report checks" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get install -y chromium >&2 || { $sudo apt-get update >&2 && $sudo apt-get install -y chromium >&2; }
fi

export ASCEND_PTQ_REQUIRE_ASSETS=1 ASCEND_PTQ_REQUIRE_ORACLE=1 ASCEND_PTQ_REQUIRE_LIBCLANG=1 ASCEND_PTQ_REQUIRE_BROWSER=1
# The ACL simulator cdylib (workspace member ffi/acl-sim) that tests/acl_sim.rs dlopens. The
# test builds it too (`cargo build -p ascend-acl-sim`, a no-op after this) and fails if it cannot.
cargo build --locked -p ascend-acl-sim
cargo test --locked --all-targets --no-fail-fast
cargo test --locked --doc
echo "test.sh: all suites passed in $(( $(date +%s) - start )) s"
