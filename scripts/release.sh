#!/usr/bin/env bash
# Release bundles for Linux boards and hosts:
#
#   scripts/release.sh [--target TRIPLE]... [--out DIR] [--max-glibc X.Y] [--no-build]
#
# For each target (default: x86_64-unknown-linux-gnu and aarch64-unknown-linux-gnu) installs
# the SDK with scripts/install.sh into ascend-ptq-<version>-<target>/ and packs
# DIR/ascend-ptq-<version>-<target>.tar.gz (DIR defaults to target/release-bundles), with
#   README.md    the commands that matter on a board, the glibc the bundle needs, the layout
#   GLIBC.txt    per ELF file: its highest GLIBC_ symbol version and the symbols that need it
#   SHA256SUMS   of every file in the bundle (`sha256sum -c SHA256SUMS` inside it)
# and DIR/<bundle>.tar.gz.sha256. The minimum glibc is read from the ELF files' version needs
# (readelf -V: .gnu.version_r) and must be at most --max-glibc (default 2.27: Ubuntu 18.04, the
# oldest OS Ascend boards ship; scripts/build-release.sh links against that glibc): a bundle
# that needs more is an error, nothing packed. --no-build packs what the last release build
# left in target/.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=()
out=target/release-bundles
max_glibc=2.27
install_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --target) targets+=("${2:?release.sh: --target needs a target triple}"); shift 2 ;;
        --target=*) targets+=("${1#*=}"); shift ;;
        --out) out="${2:?release.sh: --out needs a directory}"; shift 2 ;;
        --out=*) out="${1#*=}"; shift ;;
        --max-glibc) max_glibc="${2:?release.sh: --max-glibc needs a version like 2.31}"; shift 2 ;;
        --max-glibc=*) max_glibc="${1#*=}"; shift ;;
        --no-build) install_args+=(--no-build); shift ;;
        -h | --help) sed -n 2,16p "$0"; exit 0 ;;
        *) echo "release.sh: unknown argument '$1' (expected --target, --out, --max-glibc or --no-build; see --help)" >&2; exit 2 ;;
    esac
done
[[ "$max_glibc" =~ ^2\.[0-9]+$ ]] || { echo "release.sh: --max-glibc '$max_glibc' is not a glibc version like 2.31" >&2; exit 2; }
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu)
version=$(awk -F'"' '/^\[/ { pkg = ($0 == "[package]") } pkg && /^version *=/ { print $2; exit }' Cargo.toml)
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The highest GLIBC_x.y version an ELF file needs ("" when it needs none).
glibc_needed() {
    readelf -V -W "$1" | sed -n 's/.*Name: GLIBC_\([0-9.]*\).*/\1/p' | sort -V | tail -n 1
}

for target in "${targets[@]}"; do
    case "$target" in
        x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) ;;
        *) echo "release.sh: --target $target: only x86_64-unknown-linux-gnu and aarch64-unknown-linux-gnu are released" >&2; exit 2 ;;
    esac
    name="ascend-ptq-$version-$target"
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    dir="$stage/$name"
    # Always --target, even for this machine's: the portable build (scripts/build-release.sh).
    scripts/install.sh --prefix "$dir" --target "$target" "${install_args[@]}"

    # Minimum glibc over every ELF file of the bundle, and the symbols that set it.
    min=""
    : > "$dir/GLIBC.txt"
    for f in bin/ascend-ptq "lib/libascend_ptq.so.$version" lib/ascend_ptq/libascendcl_sim.so; do
        need=$(glibc_needed "$dir/$f")
        [ -n "$need" ] || { echo "release.sh: $f needs no GLIBC_ version at all (not a dynamically linked glibc ELF?)" >&2; exit 1; }
        syms=$(readelf --dyn-syms -W "$dir/$f" | grep -o "[A-Za-z0-9_]*@GLIBC_$need\b" | sed 's/@.*//' | sort -u | tr '\n' ' ')
        echo "$f: GLIBC_$need (${syms% })" >> "$dir/GLIBC.txt"
        min=$(printf '%s\n%s\n' "$min" "$need" | sed '/^$/d' | sort -V | tail -n 1)
    done
    if [ "$(printf '%s\n%s\n' "$min" "$max_glibc" | sort -V | tail -n 1)" != "$max_glibc" ]; then
        echo "release.sh: $name needs glibc $min, more than --max-glibc $max_glibc:" >&2
        cat "$dir/GLIBC.txt" >&2
        exit 1
    fi
    arch=${target%%-*}
    # The board OSes whose glibc is new enough.
    oses=""
    for os in "Ubuntu 18.04:2.27" "openEuler 20.03 LTS:2.28" "Ubuntu 20.04:2.31" "openEuler 22.03 LTS:2.34" "Ubuntu 22.04:2.35" "openEuler 24.03 LTS:2.38"; do
        if [ "$(printf '%s\n%s\n' "$min" "${os#*:}" | sort -V | tail -n 1)" = "${os#*:}" ]; then
            oses="${oses:+$oses, }${os%:*} (${os#*:})"
        fi
    done
    cat > "$dir/README.md" <<README
# ascend-ptq $version for $arch Linux ($target)

Needs glibc $min or newer (\`ldd --version\`): ${oses:-none of the usual board OSes}.
GLIBC.txt lists, per file, the symbols that need it. Nothing else: no
Python, no cargo, no internet. CANN (libascendcl.so, atc) only for \`build\` and \`compare\`.

On the board (from this folder, after \`source /usr/local/Ascend/ascend-toolkit/set_env.sh\`):

\`\`\`sh
bin/ascend-ptq flow PARAMS.json --soc_version Ascend310B1   # quantize, ATC-build int8 + fp16, compare them on the NPU
bin/ascend-ptq compare --int8 A_int8.om --fp16 A_fp16.om --images DIR --params PARAMS.json --report cmp   # int8 vs fp16 OM on this NPU
\`\`\`

Check this board end to end (PP-OCRv4 det: calibration, ATC, compare on the NPU; the report
folder and its .tar.gz are what a bug report needs). ASSETS holds models/ and images/ as
\`scripts/fetch-assets.sh\` makes them on a host with internet; \`--simulate\` instead of
\`--soc_version\` checks the bundle on a machine without CANN:

\`\`\`sh
bin/board-smoke.sh --soc_version Ascend310B1 --assets ASSETS
\`\`\`

The soc_version is "Ascend" + the Chip Name of \`npu-smi info\`. Without a board,
\`--acl-lib lib/ascend_ptq/libascendcl_sim.so\` runs \`compare\` (and \`flow --simulate\`)
through the CPU simulator of AscendCL (never a hardware result).

C / C++ (the library: \`lib/libascend_ptq.so.$version\`, SONAME \`$(readelf -d "$dir/lib/libascend_ptq.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')\`):

\`\`\`sh
cc app.c \$(PKG_CONFIG_PATH=\$PWD/lib/pkgconfig pkg-config --cflags --libs ascend_ptq) -o app
cmake -DCMAKE_PREFIX_PATH=\$PWD ..   # find_package(ascend_ptq CONFIG REQUIRED) → ascend_ptq::ascend_ptq
LD_LIBRARY_PATH=\$PWD/lib ./app
\`\`\`

Examples: share/ascend_ptq/examples/ (sdk_tour.cpp: calibration with progress, cancelling,
compare; run_om.cpp: an OM through AscendCL; the C API: include/ascend_ptq.h). SHA256SUMS covers
every file (\`sha256sum -c SHA256SUMS\`).
README
    (cd "$dir" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)
    tar -C "$stage" --owner=0 --group=0 --numeric-owner -czf "$out/$name.tar.gz" "$name"
    (cd "$out" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
    rm -rf "$stage"
    trap - EXIT
    echo "release.sh: $out/$name.tar.gz (needs glibc $min, at most $max_glibc allowed; $(du -h "$out/$name.tar.gz" | cut -f1))"
done
