//! Bilinear resize of float32 images, as `cv2.resize(img.astype(np.float32), size,
//! interpolation=cv2.INTER_LINEAR)` computes it in the reference `preprocess_data.py`.
//!
//! opencv-python's x86-64 wheels hand this call to Intel IPP through OpenCV's IPP HAL, and
//! IPP's arithmetic is not OpenCV's own float path (which `cv2.setUseOptimized(False)`
//! shows: f32 source coordinates and weights `1 − t, t`, up to 0.005 of a level away). What
//! IPP computes, found by comparing candidates with opencv-python-headless 4.14 and
//! bit-exact on every bundled photo for letterbox, stretch, 2× up and down, colour and grey:
//! - source coordinate `x = (d + 0.5)·(src / dst) − 0.5` in f64, clamped to `[0, src − 1]`;
//!   taps `floor(x)` and the next pixel (clamped), weight `t = f32(x − floor(x))`;
//! - each pass is `a + (b − a)·t` with `b − a` rounded to f32 and the multiply-add fused
//!   (rounded once);
//! - rows first (horizontal pass), then columns.

use super::pixels::F32Image;

/// One output coordinate: the two source indices and the weight of the second.
#[derive(Debug, Clone, Copy)]
struct Tap {
    i0: usize,
    i1: usize,
    t: f32,
}

fn taps(src: usize, dst: usize) -> Vec<Tap> {
    let scale = src as f64 / dst as f64;
    let last = (src - 1) as f64;
    (0..dst)
        .map(|d| {
            let x = ((d as f64 + 0.5) * scale - 0.5).clamp(0.0, last);
            let i0 = x.floor();
            let i0_index = i0 as usize;
            Tap { i0: i0_index, i1: (i0_index + 1).min(src - 1), t: (x - i0) as f32 }
        })
        .collect()
}

/// `a + (b − a)·t`, the difference rounded to f32, the multiply-add fused.
fn lerp(a: f32, b: f32, t: f32) -> f32 {
    (b - a).mul_add(t, a)
}

/// Resizes to `width × height` (a copy when the size is unchanged, as OpenCV does).
pub fn resize_linear_f32(img: &F32Image, width: usize, height: usize) -> F32Image {
    if (width, height) == (img.width, img.height) {
        return img.clone();
    }
    let c = img.channels;
    let xt = taps(img.width, width);
    let yt = taps(img.height, height);
    let row_len = width * c;
    let horizontal = |sy: usize| -> Vec<f32> {
        let row = &img.data[sy * img.width * c..(sy + 1) * img.width * c];
        let mut out = Vec::with_capacity(row_len);
        for t in &xt {
            for k in 0..c {
                out.push(lerp(row[t.i0 * c + k], row[t.i1 * c + k], t.t));
            }
        }
        out
    };
    // The two horizontally resized source rows of the current output row: taps are
    // monotonic, so each source row is computed once.
    let mut window: [(usize, Vec<f32>); 2] = [(usize::MAX, Vec::new()), (usize::MAX, Vec::new())];
    let mut out = Vec::with_capacity(height * row_len);
    for t in &yt {
        for (slot, sy) in [t.i0, t.i1].into_iter().enumerate() {
            if window[slot].0 != sy {
                let reuse = window.iter().position(|(i, _)| *i == sy);
                window[slot] = match reuse {
                    Some(other) => window[other].clone(),
                    None => (sy, horizontal(sy)),
                };
            }
        }
        let (top, bottom) = (&window[0].1, &window[1].1);
        out.extend(top.iter().zip(bottom).map(|(&a, &b)| lerp(a, b, t.t)));
    }
    F32Image::new(width, height, c, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_constant_images_are_unchanged() {
        let img = F32Image::new(3, 2, 1, vec![0.0, 1.5, 255.0, 7.0, 8.0, 9.0]);
        assert_eq!(resize_linear_f32(&img, 3, 2), img);
        let flat = F32Image::new(5, 4, 3, vec![200.0; 5 * 4 * 3]);
        assert!(resize_linear_f32(&flat, 13, 7).data.iter().all(|&v| v == 200.0));
    }

    #[test]
    fn half_pixel_centres_and_clamped_edges() {
        // [0, 255] → 4 pixels at x = -0.25, 0.25, 0.75, 1.25 → clamped 0, then 63.75, 191.25, 255.
        let img = F32Image::new(2, 1, 1, vec![0.0, 255.0]);
        assert_eq!(resize_linear_f32(&img, 4, 1).data, vec![0.0, 63.75, 191.25, 255.0]);
        // Vertically the same mapping: 1 → 3 rows is a copy of the row.
        let col = F32Image::new(1, 1, 1, vec![42.0]);
        assert_eq!(resize_linear_f32(&col, 1, 3).data, vec![42.0; 3]);
    }

    #[test]
    fn the_difference_is_rounded_before_the_fused_multiply_add() {
        // a + (b − a)·t with t = 1/3 (f32): fused, 10 + 90·t rounds once.
        let (a, b, t) = (10.0f32, 100.0f32, 1.0f32 / 3.0);
        assert_eq!(lerp(a, b, t), ((90.0f64 * t as f64) + 10.0) as f32);
        assert_eq!(lerp(a, a, t), a);
    }
}
