//! Geometry with OpenCV's arithmetic: the 8-bit `cv2.resize(..., interpolation=cv2.INTER_LINEAR)`
//! (fixed point), the YOLO letterbox shared by 8-bit and float32 images (the float resize is in
//! `float_resize.rs`), grey and channel-order conversions.

use super::float_resize::resize_linear_f32;
use super::pixels::{F32Image, Image, U8Image};
use crate::data::params::PadMode;

/// OpenCV's `INTER_RESIZE_COEF_BITS`: uint8 bilinear weights are 11-bit fixed point.
const COEF_BITS: u32 = 11;
const COEF_ONE: i32 = 1 << COEF_BITS;

/// One output coordinate: the two source indices and their fixed-point weights.
#[derive(Debug, Clone, Copy)]
struct Tap {
    i0: usize,
    i1: usize,
    w0: i32,
    w1: i32,
}

/// OpenCV's coordinate mapping for INTER_LINEAR: half-pixel centres, computed in f32 from a
/// f64 scale, weights rounded to 11 bits separately. Horizontally, positions outside the
/// image snap to the edge pixel with weight one (`clamp_weights`); vertically OpenCV keeps
/// the weights and only clamps the row indices, which rounds differently at the edges.
fn taps(src: usize, dst: usize, clamp_weights: bool) -> Vec<Tap> {
    let scale = 1.0 / (dst as f64 / src as f64);
    let last = src as i64 - 1;
    (0..dst)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut frac = f - s as f32;
            if clamp_weights && s < 0 {
                (s, frac) = (0, 0.0);
            }
            if clamp_weights && s >= last {
                (s, frac) = (last, 0.0);
            }
            let w0 = ((1.0 - frac) * COEF_ONE as f32).round_ties_even() as i32;
            let w1 = (frac * COEF_ONE as f32).round_ties_even() as i32;
            Tap { i0: s.clamp(0, last) as usize, i1: (s + 1).clamp(0, last) as usize, w0, w1 }
        })
        .collect()
}

/// Bilinear resize with OpenCV `INTER_LINEAR` semantics for uint8 (bit-exact with its scalar
/// path): a horizontal pass into 11-bit fixed point, then a vertical pass with OpenCV's
/// rounding `((b0·(S0>>4))>>16 + (b1·(S1>>4))>>16 + 2) >> 2`. An exact 2× downscale is an
/// area average, as OpenCV switches to INTER_AREA for it.
pub fn resize_linear(img: &U8Image, width: usize, height: usize) -> U8Image {
    let c = img.channels;
    if (width, height) == (img.width, img.height) {
        return img.clone();
    }
    if img.width == 2 * width && img.height == 2 * height {
        return halve(img);
    }
    let xt = taps(img.width, width, true);
    let yt = taps(img.height, height, false);
    let row_len = width * c;
    // Horizontally resized source rows, computed once each.
    let mut rows: Vec<Option<Vec<i32>>> = vec![None; img.height];
    let mut out = vec![0u8; height * row_len];
    for (dy, t) in yt.iter().enumerate() {
        for sy in [t.i0, t.i1] {
            if rows[sy].is_none() {
                rows[sy] = Some(horizontal(img, sy, &xt));
            }
        }
        let (s0, s1) = (rows[t.i0].as_ref().unwrap(), rows[t.i1].as_ref().unwrap());
        let dst = &mut out[dy * row_len..(dy + 1) * row_len];
        for ((d, &a), &b) in dst.iter_mut().zip(s0).zip(s1) {
            let v = ((t.w0 * (a >> 4)) >> 16) + ((t.w1 * (b >> 4)) >> 16) + 2;
            *d = (v >> 2).clamp(0, 255) as u8;
        }
        // Rows above the current window are not needed again (taps are monotonic).
        if let Some(old) = t.i0.checked_sub(1) {
            rows[old] = None;
        }
    }
    U8Image::new(width, height, c, out)
}

fn horizontal(img: &U8Image, sy: usize, xt: &[Tap]) -> Vec<i32> {
    let c = img.channels;
    let row = &img.data[sy * img.width * c..(sy + 1) * img.width * c];
    let mut out = Vec::with_capacity(xt.len() * c);
    for t in xt {
        for k in 0..c {
            out.push(row[t.i0 * c + k] as i32 * t.w0 + row[t.i1 * c + k] as i32 * t.w1);
        }
    }
    out
}

/// OpenCV's fast INTER_AREA for an exact factor 2: `(a + b + c + d + 2) >> 2`.
fn halve(img: &U8Image) -> U8Image {
    let (w, h, c) = (img.width / 2, img.height / 2, img.channels);
    let src_row = img.width * c;
    let mut out = Vec::with_capacity(w * h * c);
    for y in 0..h {
        let (r0, r1) = (&img.data[2 * y * src_row..], &img.data[(2 * y + 1) * src_row..]);
        for x in 0..w {
            for k in 0..c {
                let (i, j) = (2 * x * c + k, (2 * x + 1) * c + k);
                let sum = r0[i] as u32 + r0[j] as u32 + r1[i] as u32 + r1[j] as u32;
                out.push(((sum + 2) >> 2) as u8);
            }
        }
    }
    U8Image::new(w, h, c, out)
}

/// Where the resized image lands inside the letterboxed output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LetterboxGeometry {
    pub resized_width: usize,
    pub resized_height: usize,
    pub left: usize,
    pub top: usize,
}

/// The YOLO letterbox: `r = min(W/w, H/h)`, new size `round(w·r) × round(h·r)` (Python's
/// round, half to even), padding split as `round(d/2 ∓ 0.1)` i.e. the odd pixel goes to the
/// bottom/right (or everything there with [`PadMode::TopLeft`]).
pub fn letterbox_geometry(src_w: usize, src_h: usize, dst_w: usize, dst_h: usize, mode: PadMode) -> LetterboxGeometry {
    let r = (dst_h as f64 / src_h as f64).min(dst_w as f64 / src_w as f64);
    let rw = ((src_w as f64 * r).round_ties_even() as usize).clamp(1, dst_w);
    let rh = ((src_h as f64 * r).round_ties_even() as usize).clamp(1, dst_h);
    let (left, top) = match mode {
        PadMode::Center => ((dst_w - rw) / 2, (dst_h - rh) / 2),
        PadMode::TopLeft => (0, 0),
    };
    LetterboxGeometry { resized_width: rw, resized_height: rh, left, top }
}

/// Resizes keeping the aspect ratio and pads with `pad` to exactly `width × height`
/// (8-bit: OpenCV's fixed-point resize).
pub fn letterbox(img: &U8Image, width: usize, height: usize, pad: u8, mode: PadMode) -> U8Image {
    let g = letterbox_geometry(img.width, img.height, width, height, mode);
    place(&resize_linear(img, g.resized_width, g.resized_height), g, width, height, pad)
}

/// [`letterbox`] of a float32 image (the reference script's `letterbox` after `astype(np.float32)`).
pub fn letterbox_f32(img: &F32Image, width: usize, height: usize, pad: f32, mode: PadMode) -> F32Image {
    let g = letterbox_geometry(img.width, img.height, width, height, mode);
    place(&resize_linear_f32(img, g.resized_width, g.resized_height), g, width, height, pad)
}

/// `cv2.copyMakeBorder(..., BORDER_CONSTANT, value=pad)`: the resized image at its place in a
/// `width × height` canvas of `pad`.
fn place<T: Copy>(resized: &Image<T>, g: LetterboxGeometry, width: usize, height: usize, pad: T) -> Image<T> {
    let c = resized.channels;
    let mut out = vec![pad; width * height * c];
    for y in 0..g.resized_height {
        let src = &resized.data[y * g.resized_width * c..(y + 1) * g.resized_width * c];
        let start = ((g.top + y) * width + g.left) * c;
        out[start..start + src.len()].copy_from_slice(src);
    }
    Image::new(width, height, c, out)
}

/// `cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)` for uint8: OpenCV 4's 15-bit fixed-point BT.601
/// weights (B 3735, G 19235, R 9798; checked equal on all 2^24 colours against
/// opencv-python-headless 4.14 — the older 14-bit set differs on ~0.3% of them).
pub fn bgr_to_gray(img: &U8Image) -> U8Image {
    assert_eq!(img.channels, 3);
    let data = img
        .data
        .chunks_exact(3)
        .map(|p| ((p[0] as u32 * 3735 + p[1] as u32 * 19235 + p[2] as u32 * 9798 + (1 << 14)) >> 15) as u8)
        .collect();
    U8Image::new(img.width, img.height, 1, data)
}

/// BGR ↔ RGB in place (`cv2.COLOR_BGR2RGB`, for 8-bit and float images alike).
pub fn swap_red_blue<T>(img: &mut Image<T>) {
    assert_eq!(img.channels, 3);
    img.data.chunks_exact_mut(3).for_each(|p| p.swap(0, 2));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> U8Image {
        U8Image::new(w, h, 1, (0..w * h).map(|i| ((i % w) * 255 / (w - 1).max(1)) as u8).collect())
    }

    #[test]
    fn identity_and_constant_images_are_unchanged() {
        let img = ramp(7, 5);
        assert_eq!(resize_linear(&img, 7, 5), img);
        let flat = U8Image::new(9, 4, 3, vec![200; 9 * 4 * 3]);
        let up = resize_linear(&flat, 20, 13);
        assert!(up.data.iter().all(|&v| v == 200), "weights sum to one after rounding");
    }

    #[test]
    fn upscale_two_by_one_uses_half_pixel_centres() {
        // Source [0, 255] → 4 pixels at x = -0.25, 0.25, 0.75, 1.25 → 0, 64, 191, 255.
        let img = U8Image::new(2, 1, 1, vec![0, 255]);
        assert_eq!(resize_linear(&img, 4, 1).data, vec![0, 64, 191, 255]);
    }

    #[test]
    fn letterbox_matches_yolo_geometry() {
        // 810×1080 into 640×640: r = 0.5926, 480×640, 80 px each side.
        assert_eq!(
            letterbox_geometry(810, 1080, 640, 640, PadMode::Center),
            LetterboxGeometry { resized_width: 480, resized_height: 640, left: 80, top: 0 }
        );
        // Odd padding: 451×300 → 640×426, 214 rows of padding → 107 top.
        let g = letterbox_geometry(451, 300, 640, 640, PadMode::Center);
        assert_eq!((g.resized_width, g.resized_height, g.top), (640, 426, 107));
        let img = letterbox(&U8Image::new(4, 2, 3, vec![9; 24]), 8, 8, 114, PadMode::TopLeft);
        assert_eq!(&img.data[..3], &[9, 9, 9]);
        assert_eq!(*img.data.last().unwrap(), 114);
    }

    #[test]
    fn gray_uses_opencv_weights() {
        let img = U8Image::new(3, 1, 3, vec![255, 0, 0, 0, 255, 0, 0, 0, 255]);
        assert_eq!(bgr_to_gray(&img).data, vec![29, 150, 76]);
        // (B, G, R) = (67, 114, 157) is 121.4988 with the 14-bit weights but 122 in OpenCV 4.
        assert_eq!(bgr_to_gray(&U8Image::new(1, 1, 3, vec![67, 114, 157])).data, vec![122]);
    }
}
