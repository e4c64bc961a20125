#!/usr/bin/env bash
# Tests the aarch64 release bundle as a C/C++ user on a board would use it, on an x86-64 host:
#
#   scripts/test-release.sh [BUNDLE.tar.gz]
#
# (default: target/release-bundles/ascend-ptq-<version>-aarch64-unknown-linux-gnu.tar.gz, as
# `scripts/release.sh --target aarch64-unknown-linux-gnu` writes it). Checks the tarball's and
# every file's sha256, the layout (SONAME, symlinks, AArch64 ELFs), that `ascend-ptq --version`,
# aptq_version(), the .pc and the CMake package all say the Cargo.toml version; compiles every
# C and C++ example of the bundle with aarch64-linux-gnu-gcc/g++ once with only pkg-config (the
# bundle's .pc alone on PKG_CONFIG_LIBDIR) and once with CMake's find_package (a cross toolchain
# file whose find root is the bundle), and runs them and the CLI under qemu-aarch64:
# inspect (C) on PP-OCRv4 det, om_info (C) and `om-info` on the real ATC OMs of
# ../shared/fixtures/real-om, a calibration of the PP-OCR cls model on preprocessed photos,
# `build --simulate`, `compare --task cls`, run_om (C++) and sdk_tour (C++: calibration with
# progress, one cancelled halfway, compare) through the bundle's ACL simulator, and the
# bundle's bin/board-smoke.sh --simulate on cls with --assets.
# Needs scripts/setup-cross.sh's tools and the assets (scripts/fetch-assets.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$(date +%s)

version=$(awk -F'"' '/^\[/ { pkg = ($0 == "[package]") } pkg && /^version *=/ { print $2; exit }' Cargo.toml)
[[ "$version" =~ ^([0-9]+)\.([0-9]+)\. ]] || { echo "test-release.sh: Cargo.toml: no [package] version found" >&2; exit 1; }
if [ "${BASH_REMATCH[1]}" = 0 ]; then abi="0.${BASH_REMATCH[2]}"; else abi="${BASH_REMATCH[1]}"; fi
name="ascend-ptq-$version-aarch64-unknown-linux-gnu"
tarball="${1:-target/release-bundles/$name.tar.gz}"
assets="${ASCEND_PTQ_ASSETS:-assets}"
fixtures="../shared/fixtures/real-om"
for f in "$tarball" "$tarball.sha256" "$assets/models/ch_PP-OCRv4_det_infer.onnx" "$assets/models/ch_ppocr_mobile_v2.0_cls_infer.onnx" "$fixtures/autoencoder_ascend310_cann5.om"; do
    [ -e "$f" ] || { echo "test-release.sh: $f is missing" >&2; exit 1; }
done
for tool in aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ qemu-aarch64 cmake pkg-config readelf; do
    command -v "$tool" >/dev/null || { echo "test-release.sh: $tool is not installed (scripts/setup-cross.sh installs it)" >&2; exit 1; }
done

fail() { echo "test-release.sh: FAILED: $*" >&2; exit 1; }
# Runs an aarch64 program under qemu-user with the cross libc's loader and the bundle's lib/ on
# the guest's LD_LIBRARY_PATH (-E: not on qemu's own, an x86-64 program).
arm() { qemu-aarch64 -L /usr/aarch64-linux-gnu -E "LD_LIBRARY_PATH=$b/lib" "$@"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$(dirname "$tarball")" && sha256sum -c --quiet "$(basename "$tarball").sha256") || fail "$tarball does not match $tarball.sha256"
tar -C "$work" -xzf "$tarball"
b="$work/$name"
[ -d "$b" ] || fail "$tarball does not unpack into $name/"
(cd "$b" && sha256sum -c --quiet SHA256SUMS) || fail "a file of the bundle does not match its SHA256SUMS"

# ---- layout
for f in bin/ascend-ptq "lib/libascend_ptq.so.$version" lib/ascend_ptq/libascendcl_sim.so include/ascend_ptq.h \
    lib/pkgconfig/ascend_ptq.pc lib/cmake/ascend_ptq/ascend_ptqConfig.cmake lib/cmake/ascend_ptq/ascend_ptqConfigVersion.cmake \
    README.md GLIBC.txt share/ascend_ptq/examples/inspect.c share/ascend_ptq/examples/run_om.cpp \
    share/ascend_ptq/examples/sdk_tour.cpp bin/board-smoke.sh share/ascend_ptq/board-smoke-params.json; do
    [ -f "$b/$f" ] || fail "the bundle has no $f"
done
[ "$(readlink "$b/lib/libascend_ptq.so.$abi")" = "libascend_ptq.so.$version" ] || fail "lib/libascend_ptq.so.$abi is not a symlink to libascend_ptq.so.$version"
[ "$(readlink "$b/lib/libascend_ptq.so")" = "libascend_ptq.so.$abi" ] || fail "lib/libascend_ptq.so is not a symlink to libascend_ptq.so.$abi"
soname=$(readelf -d "$b/lib/libascend_ptq.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libascend_ptq.so.$abi" ] || fail "SONAME of lib/libascend_ptq.so.$version is '$soname', expected libascend_ptq.so.$abi"
for f in bin/ascend-ptq "lib/libascend_ptq.so.$version" lib/ascend_ptq/libascendcl_sim.so; do
    readelf -h "$b/$f" | grep -q 'Machine:.*AArch64' || fail "$f is not an AArch64 ELF"
done
grep -q "^Needs glibc [0-9.]* or newer" "$b/README.md" || fail "README.md does not state the minimum glibc"

# ---- versions: CLI, pkg-config, CMake package (aptq_version() is checked by inspect below)
cli_version=$(arm "$b/bin/ascend-ptq" --version)
[ "$cli_version" = "ascend-ptq $version" ] || fail "bin/ascend-ptq --version says '$cli_version', Cargo.toml says $version"
export PKG_CONFIG_LIBDIR="$b/lib/pkgconfig"
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
[ "$(pkg-config --modversion ascend_ptq)" = "$version" ] || fail "ascend_ptq.pc says version $(pkg-config --modversion ascend_ptq), Cargo.toml says $version"
grep -q "^set(PACKAGE_VERSION \"$version\")" "$b/lib/cmake/ascend_ptq/ascend_ptqConfigVersion.cmake" || fail "ascend_ptqConfigVersion.cmake does not say $version"

# ---- C and C++ examples with pkg-config only
mkdir -p "$work/pc"
t0=$(date +%s)
for src in "$b"/share/ascend_ptq/examples/*.c; do
    # shellcheck disable=SC2046 # pkg-config's flags are words
    aarch64-linux-gnu-gcc -std=c99 -Wall -Wextra -Werror "$src" -o "$work/pc/$(basename "$src" .c)" $(pkg-config --cflags --libs ascend_ptq) \
        || fail "compiling $(basename "$src") with pkg-config's flags"
done
for src in "$b"/share/ascend_ptq/examples/*.cpp; do
    # shellcheck disable=SC2046
    aarch64-linux-gnu-g++ -std=c++17 -Wall -Wextra -Werror "$src" -o "$work/pc/$(basename "$src" .cpp)" $(pkg-config --cflags --libs ascend_ptq) -ldl \
        || fail "compiling $(basename "$src") with pkg-config's flags"
done
readelf -d "$work/pc/inspect" | grep -q "NEEDED.*\[libascend_ptq.so.$abi\]" || fail "inspect built with pkg-config does not need libascend_ptq.so.$abi"

# ---- the same with CMake's find_package, cross-compiled with a toolchain file
mkdir -p "$work/cmake/src" "$work/cmake/build"
cat > "$work/cmake/aarch64.cmake" <<CMAKE
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Libraries, headers and packages only from the cross libc and the unpacked bundle.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu "$b")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
CMAKE
cat > "$work/cmake/src/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(ascend_ptq_bundle_check C CXX)
find_package(ascend_ptq $abi CONFIG REQUIRED)
if(NOT ascend_ptq_VERSION STREQUAL "$version")
  message(FATAL_ERROR "find_package(ascend_ptq) found version \${ascend_ptq_VERSION}, expected $version")
endif()
set(examples "$b/share/ascend_ptq/examples")
foreach(example inspect om_info)
  add_executable(\${example} "\${examples}/\${example}.c")
  set_target_properties(\${example} PROPERTIES C_STANDARD 99)
  target_link_libraries(\${example} PRIVATE ascend_ptq::ascend_ptq)
endforeach()
foreach(example run_om sdk_tour)
  add_executable(\${example} "\${examples}/\${example}.cpp")
  set_target_properties(\${example} PROPERTIES CXX_STANDARD 17)
  target_link_libraries(\${example} PRIVATE ascend_ptq::ascend_ptq \${CMAKE_DL_LIBS})
endforeach()
file(WRITE "\${CMAKE_BINARY_DIR}/acl_sim_path.txt" "\${ascend_ptq_ACL_SIM_LIBRARY}")
CMAKE
cmake -S "$work/cmake/src" -B "$work/cmake/build" -DCMAKE_TOOLCHAIN_FILE="$work/cmake/aarch64.cmake" -DCMAKE_BUILD_TYPE=Release > "$work/cmake/configure.log" 2>&1 \
    || { cat "$work/cmake/configure.log" >&2; fail "cmake configure with find_package(ascend_ptq $abi)"; }
cmake --build "$work/cmake/build" > "$work/cmake/build.log" 2>&1 || { cat "$work/cmake/build.log" >&2; fail "cmake --build"; }
readelf -d "$work/cmake/build/run_om" | grep -q "NEEDED.*\[libascend_ptq.so.$abi\]" || fail "run_om built with CMake does not need libascend_ptq.so.$abi"
sim=$(cat "$work/cmake/build/acl_sim_path.txt")
[ "$sim" = "$b/lib/ascend_ptq/libascendcl_sim.so" ] || fail "ascend_ptq_ACL_SIM_LIBRARY is '$sim', expected $b/lib/ascend_ptq/libascendcl_sim.so"
echo "test-release.sh: all examples compiled (pkg-config and CMake) in $(( $(date +%s) - t0 )) s"

# ---- run under qemu: the C API and the CLI of the bundle
t0=$(date +%s)
out=$(arm "$work/pc/inspect" "$assets/models/ch_PP-OCRv4_det_infer.onnx" "x:1,3,640,640") || fail "inspect (pkg-config build) on PP-OCRv4 det: $out"
[ "$(head -n 1 <<< "$out")" = "ascend-ptq $version" ] || fail "aptq_version() says '$(head -n 1 <<< "$out")', Cargo.toml says $version"
grep -q '"x"' <<< "$out" && grep -q 640 <<< "$out" || fail "inspect's summary of PP-OCRv4 det does not name input x at 640: $out"

out=$(arm "$work/cmake/build/om_info" "$fixtures/autoencoder_ascend310_cann5.om") || fail "om_info (CMake build) on the autoencoder OM: $out"
grep -q '"input"' <<< "$out" && grep -q 784 <<< "$out" && grep -q Ascend310 <<< "$out" || fail "om_info does not report input 100x784 on Ascend310: $out"
for om in "$fixtures"/*.om; do
    arm "$b/bin/ascend-ptq" om-info "$om" > "$work/om-info.txt" 2>&1 || { cat "$work/om-info.txt" >&2; fail "ascend-ptq om-info $om"; }
done

# Calibration of PP-OCR cls on photos, simulated OMs, compare and run_om through the simulator.
cls="$assets/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"
arm "$b/bin/ascend-ptq" preprocess scripts/calib-params.json --section cls_pre_params --out "$work/cls_bins" > /dev/null \
    || fail "ascend-ptq preprocess scripts/calib-params.json --section cls_pre_params"
bins="$work/cls_bins/imgs_batch1"
[ -f "$bins/batch0001.bin" ] || fail "preprocess wrote no $bins/batch0001.bin"
arm "$b/bin/ascend-ptq" calibration --model "$cls" --save_path "$work/quant/cls" --input_shape "x:1,3,48,192" \
    --data_dir "$bins" --data_types float32 --batch_num 8 --eval_batches 2 > "$work/calibration.txt" 2>&1 \
    || { cat "$work/calibration.txt" >&2; fail "ascend-ptq calibration of cls"; }
[ -f "$work/quant/cls_deploy_model.onnx" ] || fail "calibration wrote no cls_deploy_model.onnx"
arm "$b/bin/ascend-ptq" build --simulate --model "$cls" --deploy "$work/quant/cls_deploy_model.onnx" --input_shape "x:1,3,48,192" \
    --soc_version Ascend310B1 --out_dir "$work/om" > "$work/build.txt" 2>&1 || { cat "$work/build.txt" >&2; fail "ascend-ptq build --simulate"; }
int8_om="$work/om/ch_ppocr_mobile_v2.0_cls_infer_int8.om"
fp16_om="$work/om/ch_ppocr_mobile_v2.0_cls_infer_fp16.om"
[ -f "$int8_om" ] && [ -f "$fp16_om" ] || fail "build --simulate wrote no $int8_om / $fp16_om: $(cat "$work/build.txt")"
arm "$b/bin/ascend-ptq" compare --int8 "$int8_om" --fp16 "$fp16_om" --data_dir "$bins" --data_types float32 --batch_num 4 \
    --task cls --reference "$cls" --acl-lib "$sim" --report "$work/compare" > "$work/compare.txt" 2>&1 \
    || { cat "$work/compare.txt" >&2; fail "ascend-ptq compare through the bundle's simulator"; }
grep -q "simulator" "$work/compare.txt" || fail "compare's output does not name the simulator: $(cat "$work/compare.txt")"
[ -f "$work/compare.json" ] && [ -f "$work/compare.html" ] || fail "compare wrote no compare.json / compare.html"
out=$(arm "$work/cmake/build/run_om" "$sim" "$int8_om" "$bins/batch0001.bin" 2>&1) || fail "run_om (CMake build) through the simulator: $out"
grep -q "save_infer_model/scale_0.tmp_1" <<< "$out" || fail "run_om does not print the cls output: $out"
out=$(arm "$work/pc/run_om" "$sim" "$fp16_om" "$bins/batch0002.bin" 2>&1) || fail "run_om (pkg-config build) through the simulator: $out"
# The C++ walk through the long calls: calibration with progress, one cancelled halfway, compare.
out=$(arm "$work/cmake/build/sdk_tour" "$sim" "$cls" "x:1,3,48,192" "$bins" 4 "$work/tour" "$int8_om" "$fp16_om" "$bins" 2 2>&1) \
    || fail "sdk_tour (CMake build): $out"
grep -q "^sdk_tour: ok" <<< "$out" || fail "sdk_tour did not finish: $out"
[ -z "$(ls -A "$work/tour/cancelled" 2>/dev/null)" ] || fail "sdk_tour's cancelled calibration left files: $(ls "$work/tour/cancelled")"

# The board check from the bundle alone (its bin/board-smoke.sh, the bundle's binary under
# qemu, the cls model and photos given with --assets), simulated: no CANN here.
printf '#!/bin/sh\nexec qemu-aarch64 -L /usr/aarch64-linux-gnu -E "LD_LIBRARY_PATH=%s/lib" "%s/bin/ascend-ptq" "$@"\n' "$b" "$b" > "$work/ascend-ptq-qemu"
chmod +x "$work/ascend-ptq-qemu"
assets_abs=$(cd "$assets" && pwd)
(cd "$work" && "$b/bin/board-smoke.sh" --simulate --model cls --assets "$assets_abs" --bin "$work/ascend-ptq-qemu" --out "$work/smoke") \
    > "$work/smoke.txt" 2>&1 || { cat "$work/smoke.txt" >&2; fail "bin/board-smoke.sh --simulate from the bundle"; }
[ -f "$work/smoke/compare.html" ] && [ -f "$work/smoke.tar.gz" ] || fail "board-smoke.sh packed no report: $(tail -5 "$work/smoke.txt")"
grep -q "SIMULATED" "$work/smoke/board-smoke.log" || fail "board-smoke.sh --simulate does not say SIMULATED"
echo "test-release.sh: examples and CLI ran under qemu-aarch64 in $(( $(date +%s) - t0 )) s"
echo "test-release.sh: $name passed in $(( $(date +%s) - start )) s"
