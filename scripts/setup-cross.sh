#!/usr/bin/env bash
# Installs what the portable release builds and the aarch64 tests need, when missing (as
# scripts/test.sh installs chromium and libclang):
# - the Rust target aarch64-unknown-linux-gnu (rustup);
# - zig and cargo-zigbuild from PyPI (pinned) into target/cross-tools, a Python venv: they link
#   the release builds against an older glibc than the build machine's (scripts/build-release.sh);
# - from Debian: qemu-user (qemu-aarch64 runs the aarch64 programs), the aarch64 C/C++ cross
#   compilers and libc (gcc/g++-aarch64-linux-gnu, libc6-dev-arm64-cross: the examples are
#   compiled with them against the bundle, and qemu takes the loader from
#   /usr/aarch64-linux-gnu), cmake and pkg-config (the bundle test).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    echo "setup-cross.sh: rustup target add aarch64-unknown-linux-gnu" >&2
    rustup target add aarch64-unknown-linux-gnu >&2
fi
missing=()
for tool in aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu aarch64-linux-gnu-g++:g++-aarch64-linux-gnu \
    qemu-aarch64:qemu-user cmake:cmake pkg-config:pkg-config; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
[ -f /usr/aarch64-linux-gnu/lib/libc.so.6 ] || missing+=(libc6-dev-arm64-cross)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup-cross.sh: installing ${missing[*]}" >&2
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get install -y "${missing[@]}" >&2 || { $sudo apt-get update >&2 && $sudo apt-get install -y "${missing[@]}" >&2; }
fi
tools=target/cross-tools
want="ziglang==0.17.0 cargo-zigbuild==0.24.0"
if [ "$(cat "$tools/.installed" 2>/dev/null)" != "$want" ]; then
    echo "setup-cross.sh: installing $want into $tools" >&2
    rm -rf "$tools"
    "${PYTHON:-python3}" -m venv "$tools" >&2
    # shellcheck disable=SC2086 # the pinned requirements are words
    "$tools/bin/pip" install --quiet --disable-pip-version-check $want >&2
    echo "$want" > "$tools/.installed"
fi
