//! The point sets of `cv2.findContours(bitmap, RETR_LIST, CHAIN_APPROX_SIMPLE)` as far as the
//! DB post-processing uses them: only their convex hulls matter (`cv2.minAreaRect` hulls
//! its input, and CHAIN_APPROX_SIMPLE only drops points between others on a straight run).
//!
//! Suzuki & Abe's border following (what OpenCV implements) gives, with 8-connected
//! foreground, one outer border per 8-connected component of 1-pixels and one hole border
//! per 4-connected region of 0-pixels enclosed by a component (not reaching the image edge:
//! OpenCV pads the image with a zero frame, so pixels on the image edge count). A hole
//! border is the set of 1-pixels of the enclosing component that are 4-adjacent to the hole.
//! Instead of following borders we label the regions and collect these pixels directly.

/// One contour: the pixel centres `[x, y]` whose hull equals the OpenCV contour's hull.
pub type Contour = Vec<[f64; 2]>;

const NONE: u32 = u32::MAX;

/// All contours of `bitmap` (`width` × `height`, row-major, `true` = foreground), in the
/// raster order of their first pixel (outer borders at their top-left pixel, holes at the
/// pixel left of their top-left 0-pixel, as the raster scan of border following meets them).
pub fn find_contours(bitmap: &[bool], width: usize, height: usize) -> Vec<Contour> {
    let fg = label(bitmap, width, height, true);
    let bg = label(bitmap, width, height, false);
    // Background regions reaching the image edge are the outside, not holes.
    let mut outside = vec![false; bg.count];
    for y in 0..height {
        for x in 0..width {
            if (y == 0 || x == 0 || y + 1 == height || x + 1 == width) && bg.labels[y * width + x] != NONE {
                outside[bg.labels[y * width + x] as usize] = true;
            }
        }
    }
    // (raster start index, contour)
    let mut found: Vec<(usize, Contour)> = Vec::new();
    // Outer borders: the hull of a component is the hull of its leftmost and rightmost pixel
    // per row.
    let mut rows: Vec<Vec<(usize, usize, usize)>> = vec![Vec::new(); fg.count]; // (y, min x, max x)
    let mut first = vec![usize::MAX; fg.count];
    for y in 0..height {
        for x in 0..width {
            let l = fg.labels[y * width + x];
            if l == NONE {
                continue;
            }
            let l = l as usize;
            first[l] = first[l].min(y * width + x);
            match rows[l].last_mut() {
                Some(r) if r.0 == y => r.2 = x,
                _ => rows[l].push((y, x, x)),
            }
        }
    }
    for (l, r) in rows.iter().enumerate() {
        let pts = r.iter().flat_map(|&(y, a, b)| [[a as f64, y as f64], [b as f64, y as f64]]).collect();
        found.push((first[l], pts));
    }
    // Hole borders.
    let mut hole_first = vec![usize::MAX; bg.count];
    for (i, &l) in bg.labels.iter().enumerate() {
        if l != NONE && !outside[l as usize] {
            hole_first[l as usize] = hole_first[l as usize].min(i);
        }
    }
    let mut hole_pts: Vec<Contour> = vec![Vec::new(); bg.count];
    // The enclosing component: the one above the hole's top-left pixel (an island inside
    // the hole lies strictly below the hole's top row).
    let encloser: Vec<u32> = hole_first.iter().map(|&i| if i == usize::MAX || i < width { NONE } else { fg.labels[i - width] }).collect();
    for y in 0..height {
        for x in 0..width {
            let l = fg.labels[y * width + x];
            if l == NONE {
                continue;
            }
            let mut seen = [NONE; 4];
            for (k, (dx, dy)) in [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)].into_iter().enumerate() {
                let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                    continue;
                }
                let h = bg.labels[ny as usize * width + nx as usize];
                if h == NONE || outside[h as usize] || encloser[h as usize] != l || seen.contains(&h) {
                    continue;
                }
                seen[k] = h;
                hole_pts[h as usize].push([x as f64, y as f64]);
            }
        }
    }
    for (h, pts) in hole_pts.into_iter().enumerate() {
        if !pts.is_empty() {
            found.push((hole_first[h] - 1, pts));
        }
    }
    found.sort_by_key(|(start, _)| *start);
    found.into_iter().map(|(_, c)| c).collect()
}

struct Labels {
    labels: Vec<u32>,
    count: usize,
}

/// Connected regions of pixels equal to `value`: 8-connected for foreground, 4-connected
/// for background (the dual pair border following assumes). Others get `NONE`.
fn label(bitmap: &[bool], width: usize, height: usize, value: bool) -> Labels {
    let mut labels = vec![NONE; bitmap.len()];
    let mut count = 0usize;
    let mut stack = Vec::new();
    let neighbours: &[(i64, i64)] =
        if value { &[(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)] } else { &[(0, -1), (-1, 0), (1, 0), (0, 1)] };
    for start in 0..bitmap.len() {
        if bitmap[start] != value || labels[start] != NONE {
            continue;
        }
        let id = count as u32;
        count += 1;
        labels[start] = id;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = ((i % width) as i64, (i / width) as i64);
            for &(dx, dy) in neighbours {
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                    continue;
                }
                let j = ny as usize * width + nx as usize;
                if bitmap[j] == value && labels[j] == NONE {
                    labels[j] = id;
                    stack.push(j);
                }
            }
        }
    }
    Labels { labels, count }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::geometry::convex_hull;

    fn bitmap(rows: &[&str]) -> (Vec<bool>, usize, usize) {
        let w = rows[0].len();
        (rows.iter().flat_map(|r| r.bytes().map(|b| b == b'#')).collect(), w, rows.len())
    }

    #[test]
    fn components_are_8_connected_and_holes_are_listed() {
        let (b, w, h) = bitmap(&[
            "#.......", //
            ".#..####", //
            "....#..#", //
            "....####", //
            "........",
        ]);
        let c = find_contours(&b, w, h);
        // the diagonal pair is one component; the ring is one component with one hole
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(convex_hull(&c[0]), vec![[0.0, 0.0], [1.0, 1.0]]);
        let ring = convex_hull(&c[1]);
        assert_eq!(ring.len(), 4);
        // the hole border: the ring pixels 4-adjacent to the two hole pixels
        let mut hole = c[2].clone();
        hole.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(hole, vec![[4.0, 2.0], [5.0, 1.0], [5.0, 3.0], [6.0, 1.0], [6.0, 3.0], [7.0, 2.0]]);
    }

    #[test]
    fn background_touching_the_edge_is_not_a_hole() {
        let (b, w, h) = bitmap(&["###", "#.#", "#.#"]);
        assert_eq!(find_contours(&b, w, h).len(), 1);
        let (b, w, h) = bitmap(&["###", "#.#", "###"]);
        assert_eq!(find_contours(&b, w, h).len(), 2);
    }
}
