#!/usr/bin/env bash
# Regenerates src/device/acl/sys.rs from ffi/acl/acl_api.h with bindgen (through the bindings test,
# which holds the bindgen options). Needs libclang: apt-get install -y libclang1-14 libclang-common-14-dev
set -euo pipefail
cd "$(dirname "$0")/.."
UPDATE_ACL_BINDINGS=1 cargo test --quiet --test acl_bindings
echo "src/device/acl/sys.rs regenerated"
