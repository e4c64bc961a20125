//! Plane geometry shared by the decoders and their metrics: convex hull, minimum-area
//! rectangle, convex polygon intersection and IoU, axis-aligned box IoU. All in f64.

pub type Pt = [f64; 2];

fn cross(o: Pt, a: Pt, b: Pt) -> f64 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

/// Convex hull (Andrew's monotone chain), counter-clockwise in a y-up frame, without
/// collinear points. Fewer than 3 distinct points come back as they are (deduplicated).
pub fn convex_hull(points: &[Pt]) -> Vec<Pt> {
    let mut p: Vec<Pt> = points.to_vec();
    p.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let mut hull: Vec<Pt> = Vec::with_capacity(2 * p.len());
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &Pt>> = if pass == 0 { Box::new(p.iter()) } else { Box::new(p.iter().rev()) };
        for &q in iter {
            while hull.len() >= start + 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0 {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop(); // the last point of each chain starts the other one
    }
    hull
}

/// A rotated rectangle: its four corners in order around it, and its side lengths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotatedRect {
    pub corners: [Pt; 4],
    /// Length of the side corners[0]→corners[1].
    pub width: f64,
    /// Length of the side corners[1]→corners[2].
    pub height: f64,
}

impl RotatedRect {
    pub fn short_side(&self) -> f64 {
        self.width.min(self.height)
    }

    /// The same rectangle grown by `d` on every side (same centre and orientation).
    pub fn grown(&self, d: f64) -> RotatedRect {
        let c = self.center();
        let (u, v) = (unit(self.corners[0], self.corners[1]), unit(self.corners[1], self.corners[2]));
        let (hw, hh) = (self.width / 2.0 + d, self.height / 2.0 + d);
        let at = |su: f64, sv: f64| [c[0] + su * hw * u[0] + sv * hh * v[0], c[1] + su * hw * u[1] + sv * hh * v[1]];
        RotatedRect {
            corners: [at(-1.0, -1.0), at(1.0, -1.0), at(1.0, 1.0), at(-1.0, 1.0)],
            width: self.width + 2.0 * d,
            height: self.height + 2.0 * d,
        }
    }

    pub fn center(&self) -> Pt {
        let s = self.corners.iter().fold([0.0, 0.0], |a, p| [a[0] + p[0], a[1] + p[1]]);
        [s[0] / 4.0, s[1] / 4.0]
    }
}

fn unit(a: Pt, b: Pt) -> Pt {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let n = dx.hypot(dy);
    if n == 0.0 { [1.0, 0.0] } else { [dx / n, dy / n] }
}

/// The minimum-area enclosing rectangle of `points` (as `cv2.minAreaRect`): convex hull, then
/// rotating calipers — the optimal rectangle has a side on a hull edge (Freeman & Shapira),
/// and for each edge in turn the three other support points only move forward. One point
/// gives a zero-size rectangle, two (or collinear) points a zero-height one; `None` for none.
pub fn min_area_rect(points: &[Pt]) -> Option<RotatedRect> {
    let h = convex_hull(points);
    match h.len() {
        0 => return None,
        1 => return Some(RotatedRect { corners: [h[0]; 4], width: 0.0, height: 0.0 }),
        2 => {
            let len = (h[1][0] - h[0][0]).hypot(h[1][1] - h[0][1]);
            return Some(RotatedRect { corners: [h[0], h[1], h[1], h[0]], width: len, height: 0.0 });
        }
        _ => {}
    }
    let n = h.len();
    let dot = |a: Pt, b: Pt| a[0] * b[0] + a[1] * b[1];
    let (mut right, mut top, mut left) = (1usize, 1usize, 1usize);
    let mut best: Option<(f64, RotatedRect)> = None;
    for i in 0..n {
        let e = unit(h[i], h[(i + 1) % n]);
        let nrm = [-e[1], e[0]]; // points inward for a counter-clockwise hull
        // Farthest along the edge, then farthest from it, then least along it.
        while dot(h[(right + 1) % n], e) > dot(h[right], e) + 1e-12 {
            right = (right + 1) % n;
        }
        if i == 0 {
            top = right;
        }
        while dot(h[(top + 1) % n], nrm) > dot(h[top], nrm) + 1e-12 {
            top = (top + 1) % n;
        }
        if i == 0 {
            left = top;
        }
        while dot(h[(left + 1) % n], e) < dot(h[left], e) - 1e-12 {
            left = (left + 1) % n;
        }
        let base = h[i];
        let (lo, hi) = (dot(h[left], e) - dot(base, e), dot(h[right], e) - dot(base, e));
        let height = dot(h[top], nrm) - dot(base, nrm);
        let width = hi - lo;
        let area = width * height;
        if best.as_ref().is_none_or(|(a, _)| area < *a - 1e-9) {
            let at = |s: f64, t: f64| [base[0] + s * e[0] + t * nrm[0], base[1] + s * e[1] + t * nrm[1]];
            let rect = RotatedRect { corners: [at(lo, 0.0), at(hi, 0.0), at(hi, height), at(lo, height)], width, height };
            best = Some((area, rect));
        }
    }
    best.map(|(_, r)| r)
}

/// Shoelace area (absolute).
pub fn polygon_area(p: &[Pt]) -> f64 {
    let n = p.len();
    if n < 3 {
        return 0.0;
    }
    let s: f64 = (0..n).map(|i| p[i][0] * p[(i + 1) % n][1] - p[(i + 1) % n][0] * p[i][1]).sum();
    s.abs() / 2.0
}

fn signed_area(p: &[Pt]) -> f64 {
    let n = p.len();
    (0..n).map(|i| p[i][0] * p[(i + 1) % n][1] - p[(i + 1) % n][0] * p[i][1]).sum::<f64>() / 2.0
}

/// The intersection of two convex polygons (Sutherland–Hodgman, `subject` clipped by each
/// edge of `clip`). Either orientation is accepted.
pub fn convex_intersection(subject: &[Pt], clip: &[Pt]) -> Vec<Pt> {
    if subject.len() < 3 || clip.len() < 3 {
        return Vec::new();
    }
    let mut clip = clip.to_vec();
    if signed_area(&clip) < 0.0 {
        clip.reverse();
    }
    let mut out = subject.to_vec();
    for i in 0..clip.len() {
        let (a, b) = (clip[i], clip[(i + 1) % clip.len()]);
        let input = std::mem::take(&mut out);
        if input.is_empty() {
            break;
        }
        let inside = |p: Pt| cross(a, b, p) >= 0.0;
        for j in 0..input.len() {
            let (cur, prev) = (input[j], input[(j + input.len() - 1) % input.len()]);
            let (ci, pi) = (inside(cur), inside(prev));
            if ci != pi {
                let (dp, dc) = (cross(a, b, prev), cross(a, b, cur));
                let t = dp / (dp - dc);
                out.push([prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])]);
            }
            if ci {
                out.push(cur);
            }
        }
    }
    out
}

/// IoU of two convex polygons; 0 when the union is empty.
pub fn polygon_iou(a: &[Pt], b: &[Pt]) -> f64 {
    let inter = polygon_area(&convex_intersection(a, b));
    let union = polygon_area(a) + polygon_area(b) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// IoU of two axis-aligned boxes `[x1, y1, x2, y2]` (continuous areas, as pycocotools and
/// torchvision; no +1).
pub fn box_iou(a: &[f32; 4], b: &[f32; 4]) -> f64 {
    let area = |r: &[f32; 4]| f64::from((r[2] - r[0]).max(0.0)) * f64::from((r[3] - r[1]).max(0.0));
    let w = f64::from(a[2].min(b[2])) - f64::from(a[0].max(b[0]));
    let h = f64::from(a[3].min(b[3])) - f64::from(a[1].max(b[1]));
    let inter = w.max(0.0) * h.max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Greedy one-to-one matching: all pairs with `iou(c, r) >= thresh`, best IoU first (ties by
/// candidate, then reference index), each side used once. Returns the matched pairs.
pub fn greedy_match(n_cand: usize, n_ref: usize, thresh: f64, iou: impl Fn(usize, usize) -> f64) -> Vec<(usize, usize, f64)> {
    let mut pairs = Vec::new();
    for c in 0..n_cand {
        for r in 0..n_ref {
            let v = iou(c, r);
            if v >= thresh {
                pairs.push((c, r, v));
            }
        }
    }
    pairs.sort_by(|x, y| y.2.total_cmp(&x.2).then(x.0.cmp(&y.0)).then(x.1.cmp(&y.1)));
    let (mut used_c, mut used_r) = (vec![false; n_cand], vec![false; n_ref]);
    let mut out = Vec::new();
    for (c, r, v) in pairs {
        if !used_c[c] && !used_r[r] {
            used_c[c] = true;
            used_r[r] = true;
            out.push((c, r, v));
        }
    }
    out
}

/// Precision, recall, F1 of `matched` out of `n_cand` candidates and `n_ref` references.
/// An empty side scores 1 when the other is empty too, else 0.
pub fn prf(matched: usize, n_cand: usize, n_ref: usize) -> (f64, f64, f64) {
    let ratio = |m: usize, n: usize, other: usize| {
        if n > 0 {
            m as f64 / n as f64
        } else if other == 0 {
            1.0
        } else {
            0.0
        }
    };
    let (p, r) = (ratio(matched, n_cand, n_ref), ratio(matched, n_ref, n_cand));
    let f = if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
    (p, r, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotated(cx: f64, cy: f64, w: f64, h: f64, deg: f64) -> Vec<Pt> {
        let (s, c) = deg.to_radians().sin_cos();
        [(-w, -h), (w, -h), (w, h), (-w, h)].iter().map(|&(x, y)| [cx + 0.5 * (x * c - y * s), cy + 0.5 * (x * s + y * c)]).collect()
    }

    #[test]
    fn hull_drops_interior_and_collinear_points() {
        let pts = [[0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [2.0, 2.0], [0.0, 2.0], [1.0, 1.0], [0.0, 1.0]];
        let h = convex_hull(&pts);
        assert_eq!(h.len(), 4, "{h:?}");
        assert_eq!(polygon_area(&h), 4.0);
        assert!(signed_area(&h) > 0.0);
    }

    #[test]
    fn min_area_rect_recovers_rotated_rectangles() {
        for deg in [0.0, 13.0, 30.0, 45.0, 71.5, 90.0, 123.0] {
            let mut pts = rotated(50.0, 40.0, 30.0, 8.0, deg);
            // interior points do not change the answer
            pts.push([50.0, 40.0]);
            pts.push([52.0, 41.0]);
            let r = min_area_rect(&pts).unwrap();
            let (long, short) = (r.width.max(r.height), r.short_side());
            assert!((long - 30.0).abs() < 1e-9 && (short - 8.0).abs() < 1e-9, "{deg}°: {r:?}");
            let c = r.center();
            assert!((c[0] - 50.0).abs() < 1e-9 && (c[1] - 40.0).abs() < 1e-9);
            assert!((polygon_iou(&r.corners, &pts[..4]) - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn min_area_rect_of_a_triangle_has_a_side_on_the_hull() {
        // Right triangle legs 3, 4: the best rectangle lies on the hypotenuse: 5 × 2.4 = 12 = 3 × 4.
        let r = min_area_rect(&[[0.0, 0.0], [4.0, 0.0], [0.0, 3.0]]).unwrap();
        assert!((r.width * r.height - 12.0).abs() < 1e-9, "{r:?}");
        let two = min_area_rect(&[[0.0, 0.0], [3.0, 4.0]]).unwrap();
        assert_eq!((two.width, two.height), (5.0, 0.0));
    }

    #[test]
    fn grown_rectangle_keeps_centre_and_adds_twice_the_distance() {
        let r = min_area_rect(&rotated(10.0, 10.0, 6.0, 2.0, 30.0)).unwrap().grown(1.5);
        assert!((r.width.max(r.height) - 9.0).abs() < 1e-9 && (r.short_side() - 5.0).abs() < 1e-9);
        assert!((polygon_area(&r.corners) - 45.0).abs() < 1e-9);
    }

    #[test]
    fn polygon_iou_known_values() {
        let a = [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]];
        let b = [[1.0, 0.0], [3.0, 0.0], [3.0, 2.0], [1.0, 2.0]];
        assert!((polygon_iou(&a, &b) - 1.0 / 3.0).abs() < 1e-12);
        // clockwise input gives the same
        let bc: Vec<Pt> = b.iter().rev().copied().collect();
        assert!((polygon_iou(&a, &bc) - 1.0 / 3.0).abs() < 1e-12);
        // a square and the same square rotated 45° about its centre: intersection is the
        // regular octagon, area 8(√2−1) for side 2.
        let d = rotated(1.0, 1.0, 2.0, 2.0, 45.0);
        let oct = 8.0 * (2f64.sqrt() - 1.0);
        assert!((polygon_iou(&a, &d) - oct / (8.0 - oct)).abs() < 1e-12);
        let far = [[5.0, 5.0], [6.0, 5.0], [6.0, 6.0], [5.0, 6.0]];
        assert_eq!(polygon_iou(&a, &far), 0.0);
    }

    #[test]
    fn box_iou_and_greedy_matching() {
        assert!((box_iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 1.0, 3.0, 3.0]) - 1.0 / 7.0).abs() < 1e-12);
        // candidate 0 overlaps both references; the better pair (0,1) wins, then (1,0)
        let iou = [[0.6, 0.9], [0.7, 0.2]];
        let m = greedy_match(2, 2, 0.5, |c, r| iou[c][r]);
        assert_eq!(m.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(), vec![(0, 1), (1, 0)]);
        assert_eq!(prf(1, 2, 4), (0.5, 0.25, 2.0 * 0.125 / 0.75));
        assert_eq!(prf(0, 0, 0), (1.0, 1.0, 1.0));
    }
}
