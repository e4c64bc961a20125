"""Independent reference for src/tasks/: task decoders and agreement metrics in numpy + OpenCV.

PaddleOCR's DBPostProcess, the Ultralytics YOLOv5/v8 and YOLOX post-processing, PP-OCR's CTC
greedy decoding and classification top-k, re-expressed from their published descriptions
(not copied), with OpenCV's own findContours / minAreaRect / boxPoints / fillPoly where
PaddleOCR uses them. Tensors are raw little-endian float32 files; dims are comma lists.

  tasks_oracle.py db MAP.bin DIMS H,W [BOX_THRESH]    -> {"boxes": [...]}
  tasks_oracle.py db-metrics CAND.bin REF.bin DIMS H,W -> metrics of CAND against REF
  tasks_oracle.py ctc OUT.bin DIMS | ctc-metrics CAND.bin REF.bin DIMS
  tasks_oracle.py cls OUT.bin DIMS | cls-metrics CAND.bin REF.bin DIMS
  tasks_oracle.py yolo FAMILY OUT.bin DIMS H,W        -> {"detections": [...]}
  tasks_oracle.py yolo-metrics FAMILY CAND.bin REF.bin DIMS H,W
"""

from __future__ import annotations

import json
import math
import sys

import cv2
import numpy as np


def load(path: str, dims: str) -> np.ndarray:
    shape = [int(d) for d in dims.split(",")]
    return np.fromfile(path, dtype="<f4").reshape(shape)


def hw(s: str) -> tuple[int, int]:
    h, w = (int(v) for v in s.split(","))
    return h, w


# ---------------------------------------------------------------- db (PaddleOCR DBPostProcess)
DB = dict(thresh=0.3, box_thresh=0.6, unclip_ratio=1.5, max_candidates=1000, min_size=3)


def mini_box(points):
    """get_mini_boxes: minAreaRect, corners sorted by x, left pair / right pair by y."""
    rect = cv2.minAreaRect(points)
    p = sorted(list(cv2.boxPoints(rect)), key=lambda q: q[0])
    a, d = (0, 1) if p[1][1] > p[0][1] else (1, 0)
    b, c = (2, 3) if p[3][1] > p[2][1] else (3, 2)
    return np.array([p[a], p[b], p[c], p[d]], dtype=np.float32), min(rect[1])


def box_score_fast(pred, box):
    h, w = pred.shape
    box = box.copy()
    xmin = int(np.clip(np.floor(box[:, 0].min()), 0, w - 1))
    xmax = int(np.clip(np.ceil(box[:, 0].max()), 0, w - 1))
    ymin = int(np.clip(np.floor(box[:, 1].min()), 0, h - 1))
    ymax = int(np.clip(np.ceil(box[:, 1].max()), 0, h - 1))
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    box[:, 0] -= xmin
    box[:, 1] -= ymin
    cv2.fillPoly(mask, box.reshape(1, -1, 2).astype(np.int32), 1)
    return cv2.mean(pred[ymin : ymax + 1, xmin : xmax + 1], mask)[0]


def unclip(box, ratio):
    """Round-join offset by area*ratio/perimeter: the Minkowski sum of the box with a disk,
    as the hull of densely sampled circles around the corners (samples aligned with the
    box's own edge directions, so its extreme points in those directions are exact)."""
    poly = box.astype(np.float64)
    dist = cv2.contourArea(box) * ratio / cv2.arcLength(box, True)
    edge = poly[1] - poly[0]
    base = math.atan2(edge[1], edge[0])
    angles = base + np.arange(720) * (2 * math.pi / 720)
    ring = np.stack([np.cos(angles), np.sin(angles)], 1) * dist
    pts = (poly[:, None, :] + ring[None, :, :]).reshape(-1, 2)
    return pts.astype(np.float32)


def db_decode(pred, dest_hw, p=DB):
    h, w = pred.shape
    bitmap = (pred > p["thresh"]).astype(np.uint8) * 255
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for contour in contours[: p["max_candidates"]]:
        box, sside = mini_box(contour)
        if sside < p["min_size"]:
            continue
        score = box_score_fast(pred, box)
        if p["box_thresh"] > score:
            continue
        box, sside = mini_box(unclip(box, p["unclip_ratio"]))
        if sside < p["min_size"] + 2:
            continue
        box = box.astype(np.float64)
        box[:, 0] = np.clip(np.round(box[:, 0] / w * dest_hw[1]), 0, dest_hw[1])
        box[:, 1] = np.clip(np.round(box[:, 1] / h * dest_hw[0]), 0, dest_hw[0])
        out.append({"points": box.tolist(), "score": float(score)})
    return out


def db_map(t):
    if t.ndim == 4:
        return t[0, 0]
    if t.ndim == 3:
        return t[0]
    return t


def poly_iou(a, b):
    a = np.array(a, dtype=np.float32)
    b = np.array(b, dtype=np.float32)
    inter, _ = cv2.intersectConvexConvex(a, b)
    union = abs(cv2.contourArea(a)) + abs(cv2.contourArea(b)) - inter
    return inter / union if union > 0 else 0.0


def greedy(nc, nr, thresh, iou):
    pairs = [(iou(c, r), c, r) for c in range(nc) for r in range(nr)]
    pairs = sorted([q for q in pairs if q[0] >= thresh], key=lambda q: (-q[0], q[1], q[2]))
    used_c, used_r, n = set(), set(), 0
    for _, c, r in pairs:
        if c not in used_c and r not in used_r:
            used_c.add(c)
            used_r.add(r)
            n += 1
    return n


def prf(m, nc, nr):
    p = m / nc if nc else (1.0 if nr == 0 else 0.0)
    r = m / nr if nr else (1.0 if nc == 0 else 0.0)
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return p, r, f


def db_metrics(cand, ref):
    m = greedy(len(cand), len(ref), 0.5, lambda c, r: poly_iou(cand[c]["points"], ref[r]["points"]))
    p, r, f = prf(m, len(cand), len(ref))
    return {"precision": p, "recall": r, "f1": f, "count_candidate": len(cand), "count_reference": len(ref)}


# ------------------------------------------------------------- ctc (PaddleOCR CTCLabelDecode)
def ctc_decode(t):
    out = []
    for item in t:
        idx = item.argmax(axis=1)
        keep = np.ones(len(idx), dtype=bool)
        keep[1:] = idx[1:] != idx[:-1]
        keep &= idx != 0
        out.append([int(v) for v in idx[keep]])
    return out


def edit_distance(a, b):
    d = np.zeros((len(a) + 1, len(b) + 1), dtype=np.int64)
    d[:, 0] = np.arange(len(a) + 1)
    d[0, :] = np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
    return int(d[-1, -1])


def ctc_metrics(cand, ref):
    n = max(1, len(ref))
    exact = sum(c == r for c, r in zip(cand, ref)) / n
    acc = sum(1 - edit_distance(c, r) / max(1, len(r)) for c, r in zip(cand, ref)) / n
    return {"exact": exact, "char_accuracy": acc, "count_candidate": len(cand), "count_reference": len(ref)}


# ------------------------------------------------------------------------------ cls (top-k)
def cls_top(t, k):
    t = t.reshape(t.shape[0], -1)
    # stable sort on the negated scores: ties keep the lower index first
    return [[int(v) for v in np.argsort(-row, kind="stable")[:k]] for row in t]


def cls_metrics(cand, ref):
    k = min(5, cand.reshape(cand.shape[0], -1).shape[1])
    tc, tr = cls_top(cand, k), cls_top(ref, k)
    n = max(1, len(tr))
    top1 = sum(a[0] == b[0] for a, b in zip(tc, tr)) / n
    top5 = sum(len(set(a) & set(b)) / k for a, b in zip(tc, tr)) / n
    return {"top1": top1, "top5_overlap": top5, "count_candidate": len(tc), "count_reference": len(tr)}


# ------------------------------------------- yolo (Ultralytics v5 / v8, YOLOX demo_postprocess)
YOLO = dict(conf=0.25, iou=0.45, max_det=300, strides=(8, 16, 32))


def yolo_rows(family, t, hw_in):
    """(boxes cx,cy,w,h, objectness, class scores) of batch item 0, float32."""
    t = t[0]
    if family == "yolov8":
        t = t.T
        return t[:, :4], np.ones(len(t), np.float32), t[:, 4:]
    box, obj, cls = t[:, :4].copy(), t[:, 4], t[:, 5:]
    if family == "yolox":
        grids, strides = [], []
        for s in YOLO["strides"]:
            hs, ws = hw_in[0] // s, hw_in[1] // s
            xv, yv = np.meshgrid(np.arange(ws), np.arange(hs))
            grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
            strides.append(np.full((hs * ws, 1), s))
        grids = np.concatenate(grids).astype(np.float32)
        strides = np.concatenate(strides).astype(np.float32)
        box[:, :2] = (box[:, :2] + grids) * strides
        box[:, 2:4] = np.exp(box[:, 2:4]) * strides
    return box, obj, cls


def iou_xyxy(a, b):
    w = np.minimum(a[2], b[:, 2]).astype(np.float64) - np.maximum(a[0], b[:, 0])
    h = np.minimum(a[3], b[:, 3]).astype(np.float64) - np.maximum(a[1], b[:, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    area = lambda r: np.clip(r[..., 2] - r[..., 0], 0, None).astype(np.float64) * np.clip(r[..., 3] - r[..., 1], 0, None)
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def yolo_decode(family, t, hw_in, p=YOLO):
    box, obj, cls = yolo_rows(family, t, hw_in)
    scores = (cls * obj[:, None]).astype(np.float32)
    keep = np.ones(len(box), bool) if family != "yolov5" else obj > p["conf"]
    best = scores.argmax(1)
    conf = scores[np.arange(len(box)), best]
    keep &= conf > p["conf"]
    box, best, conf = box[keep], best[keep], conf[keep]
    xyxy = np.concatenate([box[:, :2] - box[:, 2:] / 2, box[:, :2] + box[:, 2:] / 2], 1).astype(np.float32)
    order = np.argsort(-conf, kind="stable")
    kept = []
    for i in order:
        same = [k for k in kept if best[k] == best[i]]
        if same and (iou_xyxy(xyxy[i], xyxy[same]) > p["iou"]).any():
            continue
        kept.append(i)
    kept = kept[: p["max_det"]]
    return [{"class": int(best[i]), "score": float(conf[i]), "bbox": [float(v) for v in xyxy[i]]} for i in kept]


def coco_ap(cand, ref, t):
    """pycocotools' per-class accumulate at one IoU threshold, 101 recall points."""
    cand = sorted(cand, key=lambda d: -d["score"])  # stable, as mergesort
    gt = np.array([r["bbox"] for r in ref], np.float32)
    used = np.zeros(len(ref), bool)
    tps = []
    for d in cand:
        ious = iou_xyxy(np.array(d["bbox"], np.float32), gt)
        best, m = min(t, 1 - 1e-10), -1
        for j in range(len(ref)):
            if used[j] or ious[j] < best:
                continue
            best, m = ious[j], j
        if m >= 0:
            used[m] = True
        tps.append(m >= 0)
    tp = np.cumsum(np.array(tps, dtype=np.float64))
    fp = np.cumsum(1 - np.array(tps, dtype=np.float64))
    rc = tp / len(ref)
    pr = tp / np.maximum(tp + fp, np.spacing(1))
    pr = pr.tolist()
    for i in range(len(pr) - 1, 0, -1):
        pr[i - 1] = max(pr[i - 1], pr[i])
    inds = np.searchsorted(rc, np.linspace(0, 1, 101), side="left")
    q = [pr[i] if i < len(pr) else 0.0 for i in inds]
    return float(np.mean(q))


def yolo_metrics(cand, ref):
    classes = sorted({d["class"] for d in cand + ref})
    matched, ap50, ap = 0, [], []
    for c in classes:
        cc = [d for d in cand if d["class"] == c]
        rr = [d for d in ref if d["class"] == c]
        gt = np.array([r["bbox"] for r in rr], np.float32).reshape(-1, 4)
        matched += greedy(len(cc), len(rr), 0.5, lambda i, j: float(iou_xyxy(np.array(cc[i]["bbox"], np.float32), gt[j : j + 1])[0]))
        if rr:
            ap50.append(coco_ap(cc, rr, 0.5))
            ap.append(np.mean([coco_ap(cc, rr, t) for t in np.linspace(0.5, 0.95, 10)]))
    p, r, f = prf(matched, len(cand), len(ref))
    return {
        "precision": p, "recall": r, "f1": f,
        "map50": float(np.mean(ap50)) if ap50 else None,
        "map50_95": float(np.mean(ap)) if ap else None,
        "count_candidate": len(cand), "count_reference": len(ref),
    }


def main(argv):
    cmd = argv[0]
    if cmd == "db":
        p = dict(DB, box_thresh=float(argv[4])) if len(argv) > 4 else DB
        print(json.dumps({"boxes": db_decode(db_map(load(argv[1], argv[2])), hw(argv[3]), p)}))
    elif cmd == "db-metrics":
        cand = db_decode(db_map(load(argv[1], argv[3])), hw(argv[4]))
        ref = db_decode(db_map(load(argv[2], argv[3])), hw(argv[4]))
        print(json.dumps(db_metrics(cand, ref)))
    elif cmd == "ctc":
        print(json.dumps({"sequences": ctc_decode(load(argv[1], argv[2]))}))
    elif cmd == "ctc-metrics":
        print(json.dumps(ctc_metrics(ctc_decode(load(argv[1], argv[3])), ctc_decode(load(argv[2], argv[3])))))
    elif cmd == "cls":
        print(json.dumps({"top": cls_top(load(argv[1], argv[2]), 5)}))
    elif cmd == "cls-metrics":
        print(json.dumps(cls_metrics(load(argv[1], argv[3]), load(argv[2], argv[3]))))
    elif cmd == "yolo":
        print(json.dumps({"detections": yolo_decode(argv[1], load(argv[2], argv[3]), hw(argv[4]))}))
    elif cmd == "yolo-metrics":
        fam, dims, size = argv[1], argv[4], hw(argv[5])
        cand = yolo_decode(fam, load(argv[2], dims), size)
        ref = yolo_decode(fam, load(argv[3], dims), size)
        print(json.dumps(yolo_metrics(cand, ref)))
    else:
        print(f"tasks_oracle: unknown command {cmd!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
