#!/usr/bin/env bash
# One release build of the CLI, the C library and the ACL simulator (the three files
# scripts/install.sh installs), shared by install.sh, release.sh and cross-aarch64.sh:
#
#   scripts/build-release.sh [--target x86_64-unknown-linux-gnu|aarch64-unknown-linux-gnu]
#
# Without --target: `cargo build --release` for this machine (target/release), linked against
# this machine's glibc. With --target: a portable build into target/<TRIPLE>/release, linked by
# cargo-zigbuild against glibc $ASCEND_PTQ_GLIBC (default 2.27, Ubuntu 18.04's: the oldest OS
# Ascend boards ship) instead of the build machine's, so the files need no newer glibc symbol
# versions (scripts/release.sh checks). cargo-zigbuild and zig come from PyPI into
# target/cross-tools (scripts/setup-cross.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
target=""
while [ $# -gt 0 ]; do
    case "$1" in
        --target) target="${2:?build-release.sh: --target needs a target triple}"; shift 2 ;;
        --target=*) target="${1#*=}"; shift ;;
        -h | --help) sed -n 2,12p "$0"; exit 0 ;;
        *) echo "build-release.sh: unknown argument '$1' (expected --target TRIPLE)" >&2; exit 2 ;;
    esac
done
packages=(-p ascend-ptq -p ascend-acl-sim)
if [ -z "$target" ]; then
    exec cargo build --release --locked "${packages[@]}"
fi
case "$target" in
    x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) ;;
    *) echo "build-release.sh: --target $target: expected x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu" >&2; exit 2 ;;
esac
glibc="${ASCEND_PTQ_GLIBC:-2.27}"
[[ "$glibc" =~ ^2\.[0-9]+$ ]] || { echo "build-release.sh: ASCEND_PTQ_GLIBC '$glibc' is not a glibc version like 2.27" >&2; exit 2; }
tools="$PWD/target/cross-tools"
[ -x "$tools/bin/cargo-zigbuild" ] || { echo "build-release.sh: $tools/bin/cargo-zigbuild is missing: run scripts/setup-cross.sh" >&2; exit 1; }
rustup target list --installed | grep -qx "$target" || { echo "build-release.sh: the Rust target $target is not installed: run scripts/setup-cross.sh" >&2; exit 1; }
# cargo-zigbuild finds zig as `python3 -m ziglang` of the tools venv.
PATH="$tools/bin:$PATH" exec "$tools/bin/cargo-zigbuild" zigbuild --release --locked --target "$target.$glibc" "${packages[@]}"
