"""Shared helpers for the Python test oracles in tests/oracle/.

Only the standard library, numpy, Pillow and onnx/onnxruntime (see
tests/requirements.txt) are used. Helpers that need a third-party package
import it lazily, so each script only pays for what it uses.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

# Exit codes shared by all oracles.
EXIT_OK = 0
EXIT_DIFFERENT = 1
EXIT_USAGE = 2

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif")

REPO_ROOT = Path(__file__).resolve().parents[2]


def prog() -> str:
    return Path(sys.argv[0]).stem or "oracle"


def die(msg: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print `<prog>: error: msg` to stderr and exit (default: usage/load error)."""
    print(f"{prog()}: error: {msg}", file=sys.stderr)
    sys.exit(code)


def assets_dir() -> Path:
    """The assets folder: $ASCEND_PTQ_ASSETS or <repo>/assets."""
    env = os.environ.get("ASCEND_PTQ_ASSETS")
    return Path(env) if env else REPO_ROOT / "assets"


def list_images(directory: str | os.PathLike, limit: int | None = None) -> list[Path]:
    """Image files directly in `directory`, sorted by file name, at most `limit`."""
    d = Path(directory)
    if not d.is_dir():
        die(f"image folder not found: {d}")
    files = sorted(
        (p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda p: p.name,
    )
    if not files:
        die(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {d}")
    return files if limit is None else files[:limit]


def load_image(path: str | os.PathLike, channels: int = 3):
    """Decode an image with Pillow into a PIL.Image in mode RGB (channels=3) or L (1).

    Only the first frame of multi-frame files is used. 16-bit and 32-bit
    grey images are scaled to 8 bits first; alpha is dropped.
    """
    import numpy as np
    from PIL import Image

    try:
        img = Image.open(path)
        img.seek(0)
        img.load()
    except Exception as e:  # noqa: BLE001 - report any decoder failure
        die(f"cannot decode image {path}: {e}")
    if img.mode.startswith("I;16"):
        a = np.asarray(img, dtype=np.uint32)
        img = Image.fromarray(((a * 255 + 32767) // 65535).astype(np.uint8), "L")
    elif img.mode in ("I", "F"):
        a = np.clip(np.asarray(img, dtype=np.float64), 0, 255)
        img = Image.fromarray(np.rint(a).astype(np.uint8), "L")
    return img.convert("RGB" if channels == 3 else "L")


def image_to_nchw(path: str | os.PathLike, height: int, width: int, channels: int = 3):
    """Photo -> float32 array (1, C, H, W): bilinear resize, (x/255 - 0.5) / 0.5."""
    import numpy as np
    from PIL import Image

    img = load_image(path, channels).resize((width, height), Image.Resampling.BILINEAR)
    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    a = (a / np.float32(255.0) - np.float32(0.5)) / np.float32(0.5)
    return np.ascontiguousarray(a.transpose(2, 0, 1)[None])


def load_onnx(path: str | os.PathLike, load_external_data: bool = True):
    """onnx.load with a clear error (exit 2) naming the file."""
    import onnx

    p = Path(path)
    if not p.is_file():
        die(f"model file not found: {p}")
    try:
        return onnx.load(str(p), load_external_data=load_external_data)
    except Exception as e:  # noqa: BLE001
        die(f"cannot load model {p}: {type(e).__name__}: {e}")


def ort_session(path: str | os.PathLike):
    """Deterministic single-threaded CPU onnxruntime session (exit 2 on failure)."""
    import onnxruntime as ort

    p = Path(path)
    if not p.is_file():
        die(f"model file not found: {p}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.use_deterministic_compute = True
    so.log_severity_level = 4  # fatal only: errors are raised and reported by the caller
    try:
        return ort.InferenceSession(str(p), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001
        die(f"cannot load model {p} in onnxruntime: {type(e).__name__}: {e}")


def short_repr(value, limit: int = 60) -> str:
    """repr() truncated to `limit` characters."""
    r = repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."
