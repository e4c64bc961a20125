"""Calibration accuracy (and speed) of `ascend-ptq calibration` beside ONNX Runtime's
quantize_static, on the PP-OCR models and the YOLO-family detectors, with the bundled
scikit-image photos and the scanned pages of assets/text.

    .venv/bin/python scripts/calib_accuracy.py [--models det,rec,cls,yolox,yolov8,picodet,centerface]
        [--out DIR]
        [--bin PATH] [--quick] [--speed [--repeats R] [--speed-models det,yolox] [--speed-only]] [--ort-all-ops]

Steps (one function each, see main):
 1. A fixed calibration set and a held-out set per model (see the split below), turned into
    float32 bins with `ascend-ptq preprocess` (parameters: scripts/calib-params.json, one
    section per model). det, yolox, yolov8: 13 photos + 1 page scan calibrate, 7 photos + 2
    pages are held out. rec, cls: text-line crops of the page scans (make_line_crops), the
    calibration crops from other pages than the held-out ones.
 2. Ours: `ascend-ptq calibration` on the 13 calibration bins -> *_fake_quant_model.onnx.
 3. ORT: quantize_static (QDQ, per-channel, MinMax) on the same 13 inputs, after upgrading the
    model to opset 13, fixing its input shape and running quant_pre_process (needed: see
    prepare_ort_model).
 4. On the 7 held-out inputs compare fp32 (ORT, original model), ours (ORT on our fake-quant
    model) and ORT QDQ: cosine, SQNR, max abs error over all held-out outputs, plus a task
    metric per model computed by OUR task decoders: the outputs are written in the layout of
    `ascend-ptq run` and judged by `ascend-ptq task-metrics` (src/tasks, as `compare --task`):
    det text-box F1 (DB post-processing), rec character accuracy (CTC greedy), cls top-1,
    yolox / yolov8 / picodet / centerface detection F1 and mAP@0.5 (decode + NMS; picodet and
    centerface read all their outputs, the others the first), each int8 vs fp32 as pseudo
    ground truth. Tensor metrics pool every output. CenterFace imports opset 9, below what our
    fake-quant model needs (Round, opset 11): its import is raised to 11 first (its operators
    mean the same there), and its declared [10,3,32,32] input is fixed to the run's shape. Markdown tables on stdout, numbers in OUT/accuracy.json.
 5. --speed: calibration wall time and peak RSS of both tools on det and yolox at 4/8/16/32
    images (--speed-models to choose), one fresh child process per run (--repeats R runs each, the fastest is shown); table on
    stdout, numbers in OUT/speed.json.

--quick: det only, fp32 vs ours only (no ORT quantization), for scripts/demo.sh.
--ort-all-ops: let ORT quantize every op type it can (default: only the op types Ascend's
AMCT quantizes, so both tools quantize the same layers).
Exit status: 0 when every step ran, 1 when a step failed (after printing what did run),
2 for a usage error or a missing asset.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import version_converter
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

REPO = Path(__file__).resolve().parent.parent
PARAMS_FILE = REPO / "scripts" / "calib-params.json"
DEFAULT_OUT = REPO / "data" / "calib-accuracy"
DEFAULT_BIN = REPO / "target" / "release" / "ascend-ptq"

# The photo split. Of the 28 scikit-image files we leave out multipage.tif (15x10 px), the gif
# and chessboard_* (synthetic), and four more to get 20 photos: horse.png and logo.png (RGBA
# silhouette / logo on transparency), microaneurysms.png (102x102 px) and motorcycle_right.png
# (a stereo twin of motorcycle_left.png, which would leak the calibration set into the held-out
# one). Both sets mix colour and grey, natural, texture, microscopy and text images; each set
# holds one of the two text images (page.png / text.png), the content the OCR models are for.
CALIBRATION_PHOTOS = (
    "astronaut.png",  # colour portrait
    "brick.png",  # grey texture
    "cell.png",  # grey microscopy
    "chelsea.png",  # colour, cat
    "clock_motion.png",  # grey, motion blur
    "color.png",  # colour chart
    "gravel.png",  # grey texture
    "hubble_deep_field.jpg",  # colour, dark sky
    "ihc.png",  # colour microscopy
    "moon.png",  # grey, low contrast
    "motorcycle_left.png",  # colour street scene
    "page.png",  # grey, printed text
    "phantom.png",  # colour, synthetic medical phantom
)
HELD_OUT_PHOTOS = (
    "camera.png",  # grey portrait
    "coffee.png",  # colour still life
    "coins.png",  # grey objects
    "grass.png",  # grey texture
    "retina.jpg",  # colour, fundus photo
    "rocket.jpg",  # colour outdoor scene
    "text.png",  # grey, text in the scene
)
ALL_PHOTOS = CALIBRATION_PHOTOS + HELD_OUT_PHOTOS

# The page scans and the printed map of assets/text: one page calibrates, the other page and
# the map are held out (the map's other encodings, baiona_color.jpg / baiona_gray.png, are
# left out: the same picture in both sets would leak).
CALIBRATION_PAGES = ("linn.png",)
HELD_OUT_PAGES = ("typewriter.png", "baiona.png")
# rec / cls read text lines: crops of these pages (under assets/), calibration and held-out
# crops from different pages (images/text.png has no line make_line_crops accepts).
CALIBRATION_LINE_PAGES = ("text/linn.png", "images/page.png")
HELD_OUT_LINE_PAGES = ("text/typewriter.png", "text/baiona.png")
LINES_PER_PAGE = 8

# Image counts and models for --speed (det and one detector, YOLOX at its 416² input). Beyond 20
# the photos repeat horizontally flipped.
SPEED_COUNTS = (4, 8, 16, 32)
SPEED_MODELS = ("det", "yolox")

# The op types Ascend's AMCT quantizes (docs/ascend-formats.md §5.1); ORT gets the same list by default.
AMCT_OP_TYPES = ("Conv", "Gemm", "MatMul", "ConvTranspose", "AveragePool")
ORT_OPSET = 13
# PP-OCR det post-processing binarises the probability map at 0.3.
DET_MASK_THRESHOLD = 0.3


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    key: str
    file: str
    input_name: str
    shape: tuple[int, ...]
    section: str
    # `ascend-ptq task-metrics --task`: the decoder of the outputs.
    task: str
    # "images": photos + pages; "lines": text-line crops of pages.
    inputs: str
    # Raise the ai.onnx opset import to this before calibrating (None: the model as is).
    min_opset: int | None = None

    @property
    def input_shape_arg(self) -> str:
        return f"{self.input_name}:{','.join(map(str, self.shape))}"


MODELS = {
    "det": ModelSpec("det", "ch_PP-OCRv4_det_infer.onnx", "x", (1, 3, 640, 640), "det_pre_params", "db", "images"),
    "rec": ModelSpec("rec", "ch_PP-OCRv4_rec_infer.onnx", "x", (1, 3, 48, 320), "rec_pre_params", "ctc", "lines"),
    "cls": ModelSpec("cls", "ch_ppocr_mobile_v2.0_cls_infer.onnx", "x", (1, 3, 48, 192), "cls_pre_params", "cls", "lines"),
    "yolox": ModelSpec("yolox", "ddddocr_common_det.onnx", "images", (1, 3, 416, 416), "yolox_pre_params", "yolox", "images"),
    "yolov8": ModelSpec("yolov8", "yolov8n-doclaynet.onnx", "images", (1, 3, 1024, 1024), "yolov8_pre_params", "yolov8", "images"),
    "picodet": ModelSpec("picodet", "layout_cdla.onnx", "image", (1, 3, 800, 608), "picodet_pre_params", "picodet", "images"),
    "centerface": ModelSpec("centerface", "centerface.onnx", "input.1", (1, 3, 512, 512), "centerface_pre_params", "centerface",
                            "images", min_opset=11),
}  # fmt: skip

DETECTION_TASKS = ("db", "yolox", "yolov8", "picodet", "centerface")


def fixed_model(spec: ModelSpec, source: Path, out: Path) -> Path:
    """`source` with its image input fixed to spec.shape (output dims left to inference) and,
    when spec.min_opset is set, its ai.onnx import raised to it; `source` itself when nothing
    changes."""
    model = onnx.load(str(source))
    (graph_input,) = [i for i in model.graph.input if i.name == spec.input_name]
    dims = graph_input.type.tensor_type.shape.dim
    same_shape = [d.dim_value if d.HasField("dim_value") else -1 for d in dims] == list(spec.shape)
    if same_shape and spec.min_opset is None:
        return source
    for dim, size in zip(dims, spec.shape, strict=True):
        dim.Clear()
        dim.dim_value = size
    for o in model.graph.output:
        for k, d in enumerate(o.type.tensor_type.shape.dim):
            d.Clear()
            d.dim_param = f"{o.name}_d{k}"
    del model.graph.value_info[:]
    if spec.min_opset is not None:
        # and without initializers listed as graph inputs (IR 3 style): calibration's fake-quant
        # model would keep such an input after BN folding drops its initializer
        inits = {t.name for t in model.graph.initializer}
        kept = [i for i in model.graph.input if i.name not in inits]
        del model.graph.input[:]
        model.graph.input.extend(kept)
        for imp in model.opset_import:
            if imp.domain in ("", "ai.onnx") and imp.version < spec.min_opset:
                imp.version = spec.min_opset
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


class StepError(Exception):
    """A step that failed; the message says which command and what it printed."""


def die(msg: str, code: int = 2) -> None:
    print(f"calib_accuracy: error: {msg}", file=sys.stderr)
    sys.exit(code)


def assets_dir() -> Path:
    env = os.environ.get("ASCEND_PTQ_ASSETS")
    return Path(env) if env else REPO / "assets"


# ---------------------------------------------------------------- setup and checks


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {','.join(MODELS)}")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: data/calib-accuracy)")
    p.add_argument("--bin", type=Path, default=DEFAULT_BIN, help="the ascend-ptq binary")
    p.add_argument("--quick", action="store_true", help="det only, fp32 vs ours only (no ORT quantization)")
    p.add_argument("--speed", action="store_true", help="also time calibration at 4/8/16/32 images (det and yolox)")
    p.add_argument("--speed-only", action="store_true", help="only the --speed step (no accuracy tables)")
    p.add_argument("--speed-models", default=",".join(SPEED_MODELS), help="--speed: comma-separated models to time")
    p.add_argument("--repeats", type=int, default=1, help="--speed: runs per count and tool; the fastest is shown")
    p.add_argument("--ort-all-ops", action="store_true", help="let ORT quantize every op type it supports")
    p.add_argument("--calib-flags", default="", help='extra flags for our calibration, e.g. "--bias_correction" (an ablation)')
    args = p.parse_args(argv)
    args.speed = args.speed or args.speed_only
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS]
    if args.repeats < 1:
        p.error(f"--repeats: expected a count >= 1, found {args.repeats}")
    if unknown or not keys:
        p.error(f"--models: expected a comma-separated subset of {','.join(MODELS)}, found '{args.models}'")
    args.models = ["det"] if args.quick else keys
    args.speed_models = [k.strip() for k in args.speed_models.split(",") if k.strip()]
    if not args.speed_models or any(k not in MODELS for k in args.speed_models):
        p.error(f"--speed-models: expected a comma-separated subset of {','.join(MODELS)}, found '{','.join(args.speed_models)}'")
    args.out = args.out.resolve()
    return args


def check_inputs(models: list[str], binary: Path) -> None:
    """Exits with a clear message when an asset or the binary is missing."""
    assets = assets_dir()
    needed = [assets / "models" / MODELS[k].file for k in models] + [assets / "images" / p for p in ALL_PHOTOS]
    needed += [assets / "text" / p for p in CALIBRATION_PAGES + HELD_OUT_PAGES]
    needed += [assets / p for p in CALIBRATION_LINE_PAGES + HELD_OUT_LINE_PAGES]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        die(f"missing asset(s): {', '.join(missing[:3])}{more}; run scripts/fetch-assets.sh")
    if not PARAMS_FILE.is_file():
        die(f"{PARAMS_FILE} not found")
    if not os.access(binary, os.X_OK):
        die(f"the ascend-ptq binary {binary} is missing or not executable (cargo build --release, or pass --bin)")


def read_relaxed_json(path: Path) -> dict:
    """JSON with // and # line comments and trailing commas, as ascend-ptq accepts it."""
    out, in_string, escaped, i, text = [], False, False, 0, path.read_text()
    while i < len(text):
        c = text[i]
        if in_string:
            escaped = c == "\\" and not escaped
            in_string = not (c == '"' and not escaped)
        elif c == '"':
            in_string = True
        elif c == "#" or text.startswith("//", i):
            i = text.find("\n", i)
            i = len(text) if i < 0 else i
            continue
        out.append(c)
        i += 1
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", "".join(out)))


def run_checked(cmd: list[str], what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise StepError(f"{what} failed (exit {proc.returncode}):\n  $ {' '.join(cmd)}\n{tail}")
    return proc


# ---------------------------------------------------------------- step 1: photos -> bins


def stage_photos(names: tuple[str, ...], folder: Path, pages: tuple[str, ...] = ()) -> Path:
    """A folder of symlinks to the chosen photos and pages (preprocess reads a whole folder)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).symlink_to(assets_dir() / "images" / name)
    for name in pages:
        (folder / name).symlink_to(assets_dir() / "text" / name)
    return folder


def make_line_crops(pages: tuple[str, ...], folder: Path) -> Path:
    """Text-line crops for rec / cls: PP-OCRv4 det (fp32, ONNX Runtime) on each page at a side
    of at most 960 px, its map > 0.3 dilated 3x3, the bounding rectangle of each component
    with a 4 px margin in page pixels; lines 12-200 px tall and at least twice as wide, in
    reading order (top, then left), the first LINES_PER_PAGE of each page, each cut to at most
    8 heights wide (rec's 48x320 input holds 6.7). Only the inputs come from here: the metrics
    are computed by `ascend-ptq task-metrics`."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    det = ort.InferenceSession(str(assets_dir() / "models" / MODELS["det"].file), options, providers=["CPUExecutionProvider"])
    for rel in pages:
        page = cv2.imread(str(assets_dir() / rel), cv2.IMREAD_COLOR)
        if page is None:
            raise StepError(f"cannot read {assets_dir() / rel}")
        h, w = page.shape[:2]
        scale = min(1.0, 960 / max(h, w))
        rh, rw = max(32, round(h * scale / 32) * 32), max(32, round(w * scale / 32) * 32)
        x = cv2.resize(page, (rw, rh))[..., ::-1].astype(np.float32)
        x = (x - np.array([123.675, 116.28, 103.53], np.float32)) / np.array([58.395, 57.12, 57.375], np.float32)
        prob = det.run(None, {"x": x.transpose(2, 0, 1)[None]})[0][0, 0]
        mask = cv2.dilate((prob > DET_MASK_THRESHOLD).astype(np.uint8), np.ones((3, 3), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes = []
        for c in contours:
            bx, by, bw, bh = cv2.boundingRect(c)
            x0, y0 = max(0, int(bx * w / rw) - 4), max(0, int(by * h / rh) - 4)
            x1, y1 = min(w, int((bx + bw) * w / rw) + 4), min(h, int((by + bh) * h / rh) + 4)
            if 12 <= y1 - y0 <= 200 and x1 - x0 >= 2 * (y1 - y0):  # a line, not a speck or a block
                boxes.append((y0, x0, y1, x1))
        boxes.sort()
        if not boxes:
            raise StepError(f"no text line found on {rel}")
        for k, (y0, x0, y1, x1) in enumerate(boxes[:LINES_PER_PAGE]):
            x1 = min(x1, x0 + 8 * (y1 - y0))
            cv2.imwrite(str(folder / f"{Path(rel).stem}_{k:02d}.png"), page[y0:y1, x0:x1])
    return folder


def stage_speed_photos(count: int, folder: Path) -> Path:
    """`count` images cycling through the 20 photos; every second pass is flipped left-right.
    Names start with the zero-padded index so preprocess (name order) keeps this order."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(count):
        name = ALL_PHOTOS[i % len(ALL_PHOTOS)]
        source = assets_dir() / "images" / name
        if (i // len(ALL_PHOTOS)) % 2 == 0:
            (folder / f"{i + 1:03d}_{name}").symlink_to(source)
        else:
            image = cv2.imread(str(source), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise StepError(f"cannot read {source}")
            cv2.imwrite(str(folder / f"{i + 1:03d}_{Path(name).stem}_flipped.png"), cv2.flip(image, 1))
    return folder


def preprocess(binary: Path, spec: ModelSpec, images: Path, out: Path) -> list[Path]:
    """Runs `ascend-ptq preprocess` with the model's section of calib-params.json pointed at
    `images`; returns the bins in file order, checked against the manifest."""
    section = read_relaxed_json(PARAMS_FILE)[spec.section]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    params = out / "params.json"
    params.write_text(json.dumps({spec.section: {**section, "img_root": str(images)}}, indent=2))
    run_checked([str(binary), "preprocess", str(params), "--section", spec.section, "--out", str(out)], "preprocess")
    bin_dir = out / "imgs_batch1"
    manifest = json.loads((bin_dir / "manifest.json").read_text())
    if list(manifest["shape"]) != list(spec.shape):
        raise StepError(f"{bin_dir}/manifest.json: shape {manifest['shape']}, expected {list(spec.shape)}")
    expected = sorted(p.name for p in images.iterdir())
    got = [f["images"][0] for f in manifest["files"]]
    if got != expected:
        raise StepError(f"{bin_dir}/manifest.json lists {got}, expected {expected}")
    return [bin_dir / f["file"] for f in manifest["files"]]


def load_bins(paths: list[Path], shape: tuple[int, ...]) -> list[np.ndarray]:
    return [np.fromfile(p, dtype="<f4").reshape(shape) for p in paths]


# ---------------------------------------------------------------- step 2: ours


# `--calib-flags`: appended to the calibration runs whose accuracy is measured.
EXTRA_CALIB_FLAGS: list[str] = []


def run_ours(binary: Path, spec: ModelSpec, bin_dir: Path, count: int, out: Path) -> dict:
    """`ascend-ptq calibration` (amct_onnx command line); returns its files and wall time."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    prefix = out / spec.key
    cmd = calibration_command(binary, spec, bin_dir, count, prefix) + EXTRA_CALIB_FLAGS
    start = time.perf_counter()
    run_checked(cmd, "ascend-ptq calibration")
    seconds = time.perf_counter() - start
    files = {kind: Path(f"{prefix}_{kind}") for kind in ("deploy_model.onnx", "fake_quant_model.onnx", "record.txt", "quant.json", "quant_report.json")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise StepError(f"ascend-ptq calibration did not write {', '.join(missing)}:\n  $ {' '.join(cmd)}")
    return {"fake_quant_model": files["fake_quant_model.onnx"], "seconds": seconds}


def calibration_command(binary: Path, spec: ModelSpec, bin_dir: Path, count: int, prefix: Path) -> list[str]:
    model = fixed_model(spec, assets_dir() / "models" / spec.file, prefix.parent / f"{spec.key}_input.onnx")
    return [
        str(binary), "calibration", "--model", str(model), "--save_path", str(prefix),
        "--input_shape", spec.input_shape_arg, "--data_dir", str(bin_dir),
        "--data_types", "float32", "--batch_num", str(count),
    ]  # fmt: skip


# ---------------------------------------------------------------- step 3: ORT quantize_static


def prepare_ort_model(spec: ModelSpec, out: Path) -> Path:
    """The model at opset 13 (per-channel QDQ needs it) with the input shape fixed, then ORT's
    quant_pre_process. That step is needed: the PP-OCR exports hold their weights in Constant
    nodes, which quantize_static does not see as weights (it then quantizes them per tensor,
    like activations, from calibrated ranges: det cosine 0.64); its optimizer turns them into
    initializers (and folds Conv+BatchNormalization, as AMCT does). The result is checked to
    compute what the original computes (see evaluate_model)."""
    model = onnx.load(str(fixed_model(spec, assets_dir() / "models" / spec.file, out.with_name(f"{spec.key}_input.onnx"))))
    (graph_input,) = [i for i in model.graph.input if i.name == spec.input_name]
    for dim, size in zip(graph_input.type.tensor_type.shape.dim, spec.shape, strict=True):
        dim.Clear()
        dim.dim_value = size
    converted = out.with_name(f"{spec.key}_opset{ORT_OPSET}.onnx")
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(version_converter.convert_version(model, ORT_OPSET), str(converted))
    # From a file: given a ModelProto, quant_pre_process logs an error and skips its optimizer.
    # The input shape is fixed, so ONNX shape inference suffices (the symbolic one needs sympy).
    quant_pre_process(str(converted), str(out), skip_symbolic_shape=True)
    return out


class BinReader(CalibrationDataReader):
    """Feeds the calibration bins one by one, reading each file when ORT asks for it (so a
    timed quantize_static call includes reading the data, as ours does)."""

    def __init__(self, input_name: str, paths: list[Path], shape: tuple[int, ...]):
        self.input_name, self.paths, self.shape = input_name, list(paths), shape
        self.next = 0

    def get_next(self):
        if self.next >= len(self.paths):
            return None
        path = self.paths[self.next]
        self.next += 1
        return {self.input_name: np.fromfile(path, dtype="<f4").reshape(self.shape)}

    def rewind(self):
        self.next = 0


def ort_quantize(model13: Path, spec: ModelSpec, calib_bins: list[Path], out: Path, all_ops: bool) -> Path:
    quantize_static(
        str(model13),
        str(out),
        BinReader(spec.input_name, calib_bins, spec.shape),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        op_types_to_quantize=None if all_ops else list(AMCT_OP_TYPES),
    )
    return out


# ---------------------------------------------------------------- step 4: held-out accuracy


class Outputs:
    """Every output of every held-out input: `values[j]` is output j stacked over the inputs
    (N, ...), `names[j]` its name."""

    def __init__(self, names: list[str], values: list[np.ndarray]):
        self.names, self.values = names, values

    @property
    def flat(self) -> np.ndarray:
        return np.concatenate([v.reshape(-1) for v in self.values])


def run_model(model: Path, input_name: str, inputs: list[np.ndarray]) -> Outputs:
    """All outputs for every input."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    runs = [session.run(None, {input_name: x}) for x in inputs]
    names = [o.name for o in session.get_outputs()]
    return Outputs(names, [np.stack([r[j] for r in runs]).astype(np.float64) for j in range(len(names))])


def compare(ref: Outputs, q: Outputs) -> dict:
    """Tensor metrics of q against the fp32 reference, pooled over all held-out outputs."""
    if [v.shape for v in ref.values] != [v.shape for v in q.values]:
        raise StepError(f"output shapes {[v.shape for v in q.values]} differ from fp32 {[v.shape for v in ref.values]}")
    ref, q = ref.flat, q.flat
    diff = ref - q
    noise = float(np.sum(diff * diff))
    signal = float(np.sum(ref * ref))
    norms = float(np.linalg.norm(ref) * np.linalg.norm(q))
    return {
        "cosine": float(np.sum(ref * q) / norms) if norms > 0 else None,
        # None = no error at all (infinite SQNR).
        "sqnr_db": 10 * float(np.log10(signal / noise)) if noise > 0 else None,
        "max_abs_error": float(np.max(np.abs(diff))),
    }


def write_outputs(outputs: Outputs, folder: Path) -> None:
    """One subfolder per held-out input in the layout `ascend-ptq run --output_dir` writes
    (outputs.json + a float32 .bin per output, in the model's order; names are the fp32
    model's, so both sides match), for `ascend-ptq task-metrics`."""
    shutil.rmtree(folder, ignore_errors=True)
    for k in range(len(outputs.values[0])):
        d = folder / f"{k:03d}"
        d.mkdir(parents=True)
        listing = []
        for j, (name, value) in enumerate(zip(outputs.names, outputs.values)):
            value[k].astype("<f4").tofile(d / f"output_{j}.bin")
            listing.append({"name": f"output_{j}", "dtype": "float32", "shape": list(value[k].shape), "file": f"output_{j}.bin"})
        (d / "outputs.json").write_text(json.dumps({"outputs": listing}))


def task_metrics(binary: Path, spec: ModelSpec, ref: Outputs, q: Outputs, work: Path) -> dict:
    """Our decoders' agreement of q with the fp32 outputs (pseudo ground truth), per input and
    as means. Detection tasks (db, yolox, yolov8) are averaged over the inputs where fp32
    finds something (an input where neither side finds anything would count as F1 1)."""
    write_outputs(ref, work / "fp32")
    write_outputs(q, work / "candidate")
    cmd = [str(binary), "task-metrics", "--task", spec.task, "--reference", str(work / "fp32"),
           "--candidate", str(work / "candidate"), "--input_hw", f"{spec.shape[2]},{spec.shape[3]}", "--json"]  # fmt: skip
    report = json.loads(run_checked(cmd, "ascend-ptq task-metrics").stdout)
    rows = [r["metrics"] for r in report["rows"]]
    out: dict = {"per_input": rows}
    if spec.task in DETECTION_TASKS:
        rows = [r for r in rows if r.get("count_reference", 0) > 0]
        out["inputs_with_fp32_boxes"] = len(rows)
        out["boxes_fp32"] = sum(r["count_reference"] for r in rows)
        out["boxes_candidate"] = sum(r["count_candidate"] for r in rows)
    for name in ("f1", "map50", "char_accuracy", "exact", "top1"):
        values = [r[name] for r in rows if r.get(name) is not None]
        if values:
            out[name] = float(np.mean(values))
    return out


# The task metric shown per model (a key of task_metrics' result) and its label.
TASK_METRIC = {"db": (("f1",), "text-box F1"),
               "ctc": (("char_accuracy",), "char accuracy"),
               "cls": (("top1",), "top-1"),
               "yolox": (("f1", "map50"), "F1 / mAP@0.5"),
               "yolov8": (("f1", "map50"), "F1 / mAP@0.5"),
               "picodet": (("f1", "map50"), "F1 / mAP@0.5"),
               "centerface": (("f1", "map50"), "F1 / mAP@0.5")}  # fmt: skip


def fmt(value, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def accuracy_table(spec: ModelSpec, result: dict) -> str:
    keys, label = TASK_METRIC[spec.task]
    boxes = " (boxes int8/fp32)" if "inputs_with_fp32_boxes" in result.get("ours", {}).get("task", {}) else ""
    lines = [
        f"### {spec.key}: {spec.file} ({result['calibration_images']} calibration, {result['held_out_images']} held-out "
        f"inputs, vs fp32)",
        "",
        f"| model | cosine | SQNR dB | max abs err | {label}{boxes} |",
        "|---|---|---|---|---|",
    ]
    for name in ("ours", "ort_qdq"):
        m = result.get(name)
        if isinstance(m, dict) and "metrics" in m:
            mm, t = m["metrics"], m["task"]
            task = " / ".join(fmt(t.get(k), 4) for k in keys)
            if "inputs_with_fp32_boxes" in t:
                task += f" ({t['boxes_candidate']}/{t['boxes_fp32']} on {t['inputs_with_fp32_boxes']} inputs)"
            row = [fmt(mm["cosine"], 6), fmt(mm["sqnr_db"], 2), fmt(mm["max_abs_error"], 5), task]
            lines.append(f"| {name} | {' | '.join(row)} |")
        elif isinstance(m, dict):
            lines.append(f"| {name} | failed (see below) | | | |")
    return "\n".join(lines)


def evaluate_ours(args: argparse.Namespace, spec: ModelSpec, calib_bins: list[Path], held: list[np.ndarray],
                  fp32: np.ndarray) -> dict:  # fmt: skip
    ours = run_ours(args.bin, spec, calib_bins[0].parent, len(calib_bins), args.out / spec.key / "ours")
    model = fixed_model(spec, ours["fake_quant_model"], args.out / spec.key / "ours" / "fake_quant_input.onnx")
    outputs = run_model(model, spec.input_name, held)
    return {"calibration_seconds": ours["seconds"], "fake_quant_model": str(ours["fake_quant_model"]),
            "metrics": compare(fp32, outputs),
            "task": task_metrics(args.bin, spec, fp32, outputs, args.out / spec.key / "ours" / "outputs")}  # fmt: skip


def evaluate_ort(args: argparse.Namespace, spec: ModelSpec, calib_bins: list[Path], held: list[np.ndarray],
                 fp32: np.ndarray) -> dict:  # fmt: skip
    work = args.out / spec.key / "ort"
    prepared = prepare_ort_model(spec, work / f"{spec.key}_prepared.onnx")
    check = compare(fp32, run_model(prepared, spec.input_name, held))
    if check["cosine"] is None or check["cosine"] < 0.99999:
        raise StepError(f"preparing {spec.file} for ORT (opset {ORT_OPSET}, quant_pre_process) changed its fp32 "
                        f"outputs: cosine {check['cosine']}")  # fmt: skip
    start = time.perf_counter()
    qdq = ort_quantize(prepared, spec, calib_bins, work / f"{spec.key}_qdq.onnx", args.ort_all_ops)
    seconds = time.perf_counter() - start
    outputs = run_model(qdq, spec.input_name, held)
    return {"calibration_seconds": seconds, "model": str(qdq), "prepared_fp32_cosine": check["cosine"],
            "op_types": "all" if args.ort_all_ops else list(AMCT_OP_TYPES),
            "metrics": compare(fp32, outputs),
            "task": task_metrics(args.bin, spec, fp32, outputs, work / "outputs")}  # fmt: skip


def evaluate_model(args: argparse.Namespace, spec: ModelSpec) -> dict:
    """Steps 1-4 for one model; a failing 'ours' or 'ORT' step is recorded, not fatal."""
    work = args.out / spec.key
    staged = args.out / ("lines" if spec.inputs == "lines" else "photos")
    calib_bins = preprocess(args.bin, spec, staged / "calibration", work / "bins" / "calibration")
    held_bins = preprocess(args.bin, spec, staged / "held_out", work / "bins" / "held_out")
    held = load_bins(held_bins, spec.shape)
    fp32_model = dataclasses.replace(spec, min_opset=None)
    fp32 = run_model(fixed_model(fp32_model, assets_dir() / "models" / spec.file, work / "fp32_input.onnx"), spec.input_name, held)
    result: dict = {"model": spec.file, "input_shape": list(spec.shape), "calibration_images": len(calib_bins),
                    "held_out_images": len(held_bins), "output_shapes": [list(v.shape[1:]) for v in fp32.values]}  # fmt: skip
    steps = {"ours": evaluate_ours} if args.quick else {"ours": evaluate_ours, "ort_qdq": evaluate_ort}
    for name, step in steps.items():
        try:
            result[name] = step(args, spec, calib_bins, held, fp32)
        except Exception as e:  # noqa: BLE001 - ORT raises many kinds (e.g. loading our model); record, go on
            result[name] = {"error": str(e) if isinstance(e, StepError) else f"{type(e).__name__}: {e}"}
    return result


# ---------------------------------------------------------------- step 5: speed


# Runs argv[2:] as its child and writes {"exit", "seconds", "cpu_seconds", "peak_rss_kib"} to
# argv[1] (CPU = user + system time of all threads, less sensitive to a busy machine). It is
# a fresh, small process on purpose: a child's peak RSS starts at the RSS of the process that
# forked it (Linux keeps the high-water mark across exec), so forking straight from this
# script, with onnxruntime and models loaded, would report our RSS, not the child's.
MEASURE_LAUNCHER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[2:])
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
json.dump({"exit": code, "seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
           "peak_rss_kib": usage.ru_maxrss}, open(sys.argv[1], "w"))
"""


def run_measured(cmd: list[str], log: Path) -> dict:
    """Runs cmd in a fresh launcher process; returns its exit code, wall and CPU seconds and
    peak RSS."""
    report = log.with_suffix(".measure.json")
    with open(log, "w") as sink:
        launcher = [sys.executable, "-c", MEASURE_LAUNCHER, str(report), *cmd]
        subprocess.run(launcher, stdout=sink, stderr=subprocess.STDOUT, check=True)
    return json.loads(report.read_text())


def ort_speed_worker(argv: list[str]) -> int:
    """Child process of --speed: one quantize_static call, timed from model path to written
    model; writes {"seconds", "cpu_seconds", "rss_before_kib"} to REPORT.json.
    Arguments: KEY MODEL13 OUT_MODEL REPORT.json COUNT all|amct BIN..."""
    key, model13, out, report, count, ops, *bins = argv
    spec = MODELS[key]
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    ort_quantize(Path(model13), spec, [Path(b) for b in bins[: int(count)]], Path(out), all_ops=ops == "all")
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    write_json(Path(report), {"seconds": seconds, "cpu_seconds": cpu, "rss_before_kib": before.ru_maxrss})
    return 0


def time_ours(args: argparse.Namespace, spec: ModelSpec, bin_dir: Path, count: int, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    m = run_measured(calibration_command(args.bin, spec, bin_dir, count, out / spec.key), out / "log.txt")
    if m["exit"] != 0:
        return {"error": f"exit {m['exit']}: see {out / 'log.txt'}"}
    return {"seconds": m["seconds"], "cpu_seconds": m["cpu_seconds"], "peak_rss_mib": m["peak_rss_kib"] / 1024}


def time_ort(args: argparse.Namespace, spec: ModelSpec, model: Path, bins: list[Path], count: int, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    worker = [sys.executable, str(Path(__file__).resolve()), "--ort-speed-worker", spec.key, str(model),
              str(out / "qdq.onnx"), str(out / "report.json"), str(count),
              "all" if args.ort_all_ops else "amct", *map(str, bins)]  # fmt: skip
    m = run_measured(worker, out / "log.txt")
    if m["exit"] != 0:
        return {"error": f"exit {m['exit']}: see {out / 'log.txt'}"}
    report = json.loads((out / "report.json").read_text())
    return {"seconds": report["seconds"], "cpu_seconds": report["cpu_seconds"], "peak_rss_mib": m["peak_rss_kib"] / 1024,
            "rss_before_call_mib": report["rss_before_kib"] / 1024}  # fmt: skip


def fastest(runs: list[dict]) -> dict:
    """The fastest run, with every run's time; the first failure if any run failed."""
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    best = dict(min(runs, key=lambda r: r["seconds"]))
    best["all_seconds"] = [r["seconds"] for r in runs]
    best["all_cpu_seconds"] = [r["cpu_seconds"] for r in runs]
    return best


def measure_speed(args: argparse.Namespace, key: str) -> dict:
    spec = MODELS[key]
    work = args.out / "speed" / key
    photos = stage_speed_photos(max(SPEED_COUNTS), work / "photos")
    bins = preprocess(args.bin, spec, photos, work / "bins")
    model = prepare_ort_model(spec, work / f"{spec.key}_prepared.onnx")
    rows = []
    for count in SPEED_COUNTS:
        # Alternating the tools spreads the load of other processes over both.
        ours, ort_runs = [], []
        for _ in range(args.repeats):
            ours.append(time_ours(args, spec, bins[0].parent, count, work / f"ours_{count}"))
            ort_runs.append(time_ort(args, spec, model, bins, count, work / f"ort_{count}"))
        row = {"images": count, "ours": fastest(ours), "ort": fastest(ort_runs)}
        if "seconds" in row["ours"] and "seconds" in row["ort"]:
            row["time_ratio_ours_over_ort"] = row["ours"]["seconds"] / row["ort"]["seconds"]
            row["cpu_ratio_ours_over_ort"] = row["ours"]["cpu_seconds"] / row["ort"]["cpu_seconds"]
            row["rss_ratio_ours_over_ort"] = row["ours"]["peak_rss_mib"] / row["ort"]["peak_rss_mib"]
        rows.append(row)
        print(f"speed: {key}, {count} images done", file=sys.stderr)
    ort_ops = "all op types" if args.ort_all_ops else ", ".join(AMCT_OP_TYPES)
    return {
        "model": spec.file,
        "input_shape": list(spec.shape),
        "images": [p.name for p in sorted(photos.iterdir())],
        "note": f"the first {len(ALL_PHOTOS)} images are the photos, the next {len(ALL_PHOTOS)} the same "
        "photos flipped left-right. Each run is a fresh child process. Ours: the whole calibration "
        "command. ORT: one quantize_static call (QDQ, per-channel, MinMax on "
        f"{ort_ops}) from the model path to the written model, in a fresh python whose peak RSS "
        "includes the interpreter and onnxruntime (RSS before the call in brackets). CPU = user + "
        "system seconds of all threads (ours: the process; ORT: the call)",
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "runs": rows,
    }


def speed_table(speed: dict) -> str:
    lines = [
        f"### calibration speed: {speed['model']} ({speed['input_shape']}), fastest of {speed['repeats']} run(s)",
        "",
        "| images | ours s | ORT s | time ours/ORT | ours CPU s | ORT CPU s | CPU ours/ORT "
        "| ours peak RSS MiB | ORT peak RSS MiB (before call) | RSS ours/ORT |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in speed["runs"]:
        o, t = r["ours"], r["ort"]
        cells = [str(r["images"])]
        cells += [fmt(o.get("seconds"), 2), fmt(t.get("seconds"), 2), fmt(r.get("time_ratio_ours_over_ort"), 2)]
        cells += [fmt(o.get("cpu_seconds"), 2), fmt(t.get("cpu_seconds"), 2), fmt(r.get("cpu_ratio_ours_over_ort"), 2)]
        ort_rss = f"{t['peak_rss_mib']:.0f} ({t['rss_before_call_mib']:.0f})" if "seconds" in t else "n/a"
        cells += [fmt(o.get("peak_rss_mib"), 0), ort_rss, fmt(r.get("rss_ratio_ours_over_ort"), 2)]
        lines.append(f"| {' | '.join(cells)} |")
    failures = [f"{r['images']} images, {tool}: {r[tool]['error']}" for r in speed["runs"] for tool in ("ours", "ort")
                if "error" in r[tool]]  # fmt: skip
    return "\n".join(lines + [""] + failures if failures else lines)


# ---------------------------------------------------------------- main


def write_json(path: Path, value) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    tmp.replace(path)


def run_accuracy(args: argparse.Namespace) -> bool:
    """Steps 1-4 for every chosen model; prints the tables, writes accuracy.json; True if all ran."""
    stage_photos(CALIBRATION_PHOTOS, args.out / "photos" / "calibration", CALIBRATION_PAGES)
    stage_photos(HELD_OUT_PHOTOS, args.out / "photos" / "held_out", HELD_OUT_PAGES)
    accuracy: dict = {"calibration_photos": list(CALIBRATION_PHOTOS), "held_out_photos": list(HELD_OUT_PHOTOS),
                      "calibration_pages": list(CALIBRATION_PAGES), "held_out_pages": list(HELD_OUT_PAGES),
                      "onnxruntime": ort.__version__, "models": {}}  # fmt: skip
    if any(MODELS[k].inputs == "lines" for k in args.models):
        try:
            make_line_crops(CALIBRATION_LINE_PAGES, args.out / "lines" / "calibration")
            make_line_crops(HELD_OUT_LINE_PAGES, args.out / "lines" / "held_out")
        except StepError as e:
            print(f"text-line crops: failed\n{e}", file=sys.stderr)
            return False
        accuracy["line_crops"] = {split: sorted(p.name for p in (args.out / "lines" / split).iterdir())
                                  for split in ("calibration", "held_out")}  # fmt: skip
    if not args.quick:
        accuracy["ort_quantize_static"] = {"quant_format": "QDQ", "per_channel": True, "calibrate_method": "MinMax",
                                           "activation_type": "QInt8", "weight_type": "QInt8", "opset": ORT_OPSET,
                                           "op_types": "all" if args.ort_all_ops else list(AMCT_OP_TYPES)}  # fmt: skip
    ok = True
    for key in args.models:
        spec = MODELS[key]
        try:
            result = evaluate_model(args, spec)
        except StepError as e:
            result = {"error": str(e)}
        accuracy["models"][key] = result
        if "error" in result:
            print(f"### {key}: failed\n\n{result['error']}\n")
            ok = False
            continue
        print(accuracy_table(spec, result) + "\n")
        for name in ("ours", "ort_qdq"):
            if "error" in result.get(name, {}):
                print(f"{key} {name} failed:\n{result[name]['error']}\n", file=sys.stderr)
                ok = False
    write_json(args.out / "accuracy.json", accuracy)
    print(f"numbers: {args.out / 'accuracy.json'}")
    return ok


def run_speed(args: argparse.Namespace) -> bool:
    """Step 5; prints a table per model, writes speed.json ({model key: numbers}); True if
    every run succeeded."""
    results, ok = {}, True
    for key in args.speed_models:
        try:
            speed = measure_speed(args, key)
        except StepError as e:
            print(f"speed: {key} failed\n{e}", file=sys.stderr)
            ok = False
            continue
        results[key] = speed
        print("\n" + speed_table(speed) + "\n")
        ok = ok and not any("error" in r["ours"] or "error" in r["ort"] for r in speed["runs"])
    write_json(args.out / "speed.json", results)
    if results:
        print(next(iter(results.values()))["note"] + ".")
    print(f"numbers: {args.out / 'speed.json'}")
    return ok


def main(argv: list[str]) -> int:
    if argv[:1] == ["--ort-speed-worker"]:
        return ort_speed_worker(argv[1:])
    args = parse_args(argv)
    EXTRA_CALIB_FLAGS.extend(shlex.split(args.calib_flags))
    # quantize_static's advice (pre-processing, bias initializers) is handled in prepare_ort_model.
    logging.getLogger().setLevel(logging.ERROR)
    check_inputs(sorted(set(args.models) | (set(args.speed_models) if args.speed else set())), args.bin)
    args.out.mkdir(parents=True, exist_ok=True)
    ok = True if args.speed_only else run_accuracy(args)
    if args.speed:
        ok = run_speed(args) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
