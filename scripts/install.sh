#!/usr/bin/env bash
# Builds ascend-ptq in release mode and installs the SDK a C/C++ application on the board needs:
#
#   scripts/install.sh [--prefix P] [--target aarch64-unknown-linux-gnu] [--no-build]
#
#   P/bin/ascend-ptq
#   P/lib/libascend_ptq.so.X.Y.Z                       the C library (SONAME libascend_ptq.so.<abi>)
#   P/lib/libascend_ptq.so.<abi> -> libascend_ptq.so.X.Y.Z   what the loader looks for
#   P/lib/libascend_ptq.so -> libascend_ptq.so.<abi>         what the linker's -lascend_ptq finds
#   P/include/ascend_ptq.h
#   P/lib/pkgconfig/ascend_ptq.pc                      relocatable (prefix=${pcfiledir}/../..)
#   P/lib/cmake/ascend_ptq/ascend_ptqConfig.cmake      find_package(ascend_ptq): ascend_ptq::ascend_ptq
#   P/lib/cmake/ascend_ptq/ascend_ptqConfigVersion.cmake
#   P/lib/ascend_ptq/libascendcl_sim.so                the ACL simulator (ffi/acl-sim), for --acl-lib
#   P/share/ascend_ptq/examples/                       ffi/examples (C and C++)
#   P/bin/board-smoke.sh, P/share/ascend_ptq/board-smoke-params.json   the board check
#
# <abi> is the package's major version, or 0.<minor> while the major is 0 (build.rs sets the
# same SONAME; this script checks the built library carries it). The default prefix is
# /usr/local. The build is scripts/build-release.sh's: without --target for this machine, with
# --target (x86_64- or aarch64-unknown-linux-gnu) a portable build for glibc 2.27 and newer
# (its tools: scripts/setup-cross.sh). --no-build installs what the last such build left in
# target/ (it must exist).
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr/local
target=""
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="${2:?install.sh: --prefix needs a directory}"; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; shift ;;
        --target) target="${2:?install.sh: --target needs a target triple}"; shift 2 ;;
        --target=*) target="${1#*=}"; shift ;;
        --no-build) build=0; shift ;;
        -h | --help) sed -n 2,22p "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument '$1' (expected --prefix P, --target TRIPLE or --no-build; see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$prefix" ] || { echo "install.sh: --prefix is empty (expected a directory)" >&2; exit 2; }

# The package version from Cargo.toml's [package] table, and the ABI part of the SONAME.
version=$(awk -F'"' '/^\[/ { pkg = ($0 == "[package]") } pkg && /^version *=/ { print $2; exit }' Cargo.toml)
[[ "$version" =~ ^([0-9]+)\.([0-9]+)\.([0-9]+) ]] || { echo "install.sh: Cargo.toml: no [package] version \"X.Y.Z\" found (got '$version')" >&2; exit 1; }
if [ "${BASH_REMATCH[1]}" = 0 ]; then abi="0.${BASH_REMATCH[2]}"; else abi="${BASH_REMATCH[1]}"; fi

out=target/release
target_args=()
if [ -n "$target" ]; then
    out="target/$target/release"
    target_args=(--target "$target")
fi
if [ "$build" = 1 ]; then
    scripts/build-release.sh "${target_args[@]}"
fi
for f in ascend-ptq libascend_ptq.so libascendcl_sim.so; do
    [ -f "$out/$f" ] || { echo "install.sh: $out/$f is missing (build it first, or drop --no-build)" >&2; exit 1; }
done
soname=$(readelf -d "$out/libascend_ptq.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libascend_ptq.so.$abi" ] || { echo "install.sh: $out/libascend_ptq.so has SONAME '$soname', expected libascend_ptq.so.$abi (build.rs sets it; is the build older than build.rs?)" >&2; exit 1; }

mkdir -p "$prefix"/{bin,include,lib/pkgconfig,lib/cmake/ascend_ptq,lib/ascend_ptq,share/ascend_ptq/examples}
install -m 755 "$out/ascend-ptq" "$prefix/bin/ascend-ptq"
install -m 755 "$out/libascend_ptq.so" "$prefix/lib/libascend_ptq.so.$version"
ln -sfn "libascend_ptq.so.$version" "$prefix/lib/libascend_ptq.so.$abi"
ln -sfn "libascend_ptq.so.$abi" "$prefix/lib/libascend_ptq.so"
install -m 755 "$out/libascendcl_sim.so" "$prefix/lib/ascend_ptq/libascendcl_sim.so"
install -m 644 include/ascend_ptq.h "$prefix/include/ascend_ptq.h"
install -m 644 ffi/examples/*.c ffi/examples/*.cpp "$prefix/share/ascend_ptq/examples/"
# The board check, runnable from the installed tree alone (it finds the files below next to it).
install -m 755 scripts/board-smoke.sh "$prefix/bin/board-smoke.sh"
install -m 644 scripts/calib-params.json "$prefix/share/ascend_ptq/board-smoke-params.json"

cat > "$prefix/lib/pkgconfig/ascend_ptq.pc" <<PC
prefix=\${pcfiledir}/../..
exec_prefix=\${prefix}
libdir=\${prefix}/lib
includedir=\${prefix}/include
# The ACL simulator (a CPU stand-in for libascendcl.so, for --acl-lib / aptq_acl_open).
acl_sim=\${libdir}/ascend_ptq/libascendcl_sim.so

Name: ascend_ptq
Description: INT8 post-training quantization for Huawei Ascend NPUs (C API)
Version: $version
Libs: -L\${libdir} -lascend_ptq
Cflags: -I\${includedir}
PC

cat > "$prefix/lib/cmake/ascend_ptq/ascend_ptqConfig.cmake" <<CMAKE
# find_package(ascend_ptq CONFIG) for ascend-ptq $version, written by scripts/install.sh.
# Relocatable: everything is found relative to this file (PREFIX/lib/cmake/ascend_ptq/).
#   ascend_ptq::ascend_ptq         imported shared library (include directory attached)
#   ascend_ptq_ACL_SIM_LIBRARY     the ACL simulator libascendcl_sim.so
get_filename_component(_ascend_ptq_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
set(ascend_ptq_VERSION "$version")
set(ascend_ptq_INCLUDE_DIRS "\${_ascend_ptq_prefix}/include")
set(ascend_ptq_LIBRARIES ascend_ptq::ascend_ptq)
set(ascend_ptq_ACL_SIM_LIBRARY "\${_ascend_ptq_prefix}/lib/ascend_ptq/libascendcl_sim.so")
foreach(_ascend_ptq_file "lib/libascend_ptq.so.$version" "include/ascend_ptq.h")
  if(NOT EXISTS "\${_ascend_ptq_prefix}/\${_ascend_ptq_file}")
    set(ascend_ptq_FOUND FALSE)
    set(ascend_ptq_NOT_FOUND_MESSAGE "\${_ascend_ptq_prefix}/\${_ascend_ptq_file} is missing (incomplete install of ascend-ptq $version)")
    return()
  endif()
endforeach()
if(NOT TARGET ascend_ptq::ascend_ptq)
  add_library(ascend_ptq::ascend_ptq SHARED IMPORTED)
  set_target_properties(ascend_ptq::ascend_ptq PROPERTIES
    IMPORTED_LOCATION "\${_ascend_ptq_prefix}/lib/libascend_ptq.so.$version"
    IMPORTED_SONAME "libascend_ptq.so.$abi"
    INTERFACE_INCLUDE_DIRECTORIES "\${_ascend_ptq_prefix}/include")
endif()
unset(_ascend_ptq_file)
unset(_ascend_ptq_prefix)
CMAKE

cat > "$prefix/lib/cmake/ascend_ptq/ascend_ptqConfigVersion.cmake" <<CMAKE
# Version check for find_package(ascend_ptq X.Y): compatible when the ABI ("$abi": the major
# version, or 0.minor while it is 0) matches and $version is not older than asked; 64-bit only.
set(PACKAGE_VERSION "$version")
set(PACKAGE_VERSION_COMPATIBLE FALSE)
if(NOT "\${CMAKE_SIZEOF_VOID_P}" STREQUAL "" AND NOT "\${CMAKE_SIZEOF_VOID_P}" STREQUAL "8")
  set(PACKAGE_VERSION "$version (64-bit)")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
  return()
endif()
if(NOT PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
elseif(NOT PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  if("$abi" MATCHES "^0\\\\.")
    set(_ascend_ptq_want "\${PACKAGE_FIND_VERSION_MAJOR}.\${PACKAGE_FIND_VERSION_MINOR}")
  else()
    set(_ascend_ptq_want "\${PACKAGE_FIND_VERSION_MAJOR}")
  endif()
  if(_ascend_ptq_want STREQUAL "$abi")
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
  endif()
  unset(_ascend_ptq_want)
endif()
if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
  set(PACKAGE_VERSION_EXACT TRUE)
endif()
CMAKE
echo "install.sh: ascend-ptq $version${target:+ ($target)} installed in $prefix (libascend_ptq.so.$abi)"
