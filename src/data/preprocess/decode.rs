//! Decoding an image file into 8-bit BGR, as OpenCV's `cv2.imread(path, cv2.IMREAD_COLOR)`
//! returns it: grey replicated to three channels, alpha dropped (not composited), 16-bit
//! samples reduced to their high byte, EXIF orientation applied, ICC profiles ignored.
//! JPEG goes through libjpeg-turbo's decoder (as in OpenCV), so pixels are identical; other
//! formats (and JPEGs libjpeg rejects, e.g. CMYK) through the `image` crate.

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

pub use super::pixels::U8Image;

/// Why a file could not be decoded (the caller adds the file name).
pub type DecodeError = String;

/// Reads `path` into a 3-channel BGR image. The format comes from the file content, so a
/// mislabelled extension still decodes.
pub fn decode_bgr(path: &Path) -> Result<U8Image, DecodeError> {
    if is_jpeg(path) {
        return match decode_jpeg_libjpeg(path) {
            Ok(img) => Ok(img),
            Err(libjpeg_error) => decode_with_image_crate(path).map_err(|_| libjpeg_error),
        };
    }
    decode_with_image_crate(path)
}

fn is_jpeg(path: &Path) -> bool {
    let mut magic = [0u8; 3];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic == [0xFF, 0xD8, 0xFF]
}

/// libjpeg reports fatal errors by unwinding (mozjpeg's error manager, without the panic
/// hook); catch them here so a corrupt file is an error, never a crash.
fn decode_jpeg_libjpeg(path: &Path) -> Result<U8Image, DecodeError> {
    let decoded = catch_unwind(AssertUnwindSafe(|| -> std::io::Result<(usize, usize, Vec<u8>, Orientation)> {
        let d = mozjpeg::Decompress::with_markers(&[mozjpeg::Marker::APP(1)]).from_path(path)?;
        let orientation = d
            .markers()
            .find_map(|m| m.data.strip_prefix(b"Exif\0\0").and_then(Orientation::from_exif_chunk))
            .unwrap_or(Orientation::NoTransforms);
        let mut started = d.rgb()?;
        let (w, h) = (started.width(), started.height());
        let rgb = started.read_scanlines::<u8>()?;
        started.finish()?;
        Ok((w, h, rgb, orientation))
    }));
    let (w, h, rgb, orientation) = match decoded {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(payload) => {
            return Err(payload.downcast_ref::<String>().cloned().unwrap_or_else(|| "libjpeg failed".into()));
        }
    };
    let buffer = RgbImage::from_raw(w as u32, h as u32, rgb).ok_or("libjpeg returned a short image")?;
    let mut img = DynamicImage::ImageRgb8(buffer);
    img.apply_orientation(orientation);
    Ok(to_bgr8(&img))
}

fn decode_with_image_crate(path: &Path) -> Result<U8Image, DecodeError> {
    let reader = ImageReader::open(path).map_err(|e| e.to_string())?.with_guessed_format().map_err(|e| e.to_string())?;
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    // A broken EXIF block must not reject a readable image: OpenCV ignores it too.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    img.apply_orientation(orientation);
    Ok(to_bgr8(&img))
}

fn to_bgr8(img: &DynamicImage) -> U8Image {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = Vec::with_capacity(w * h * 3);
    match img {
        DynamicImage::ImageLuma8(g) => g.as_raw().iter().for_each(|&v| out.extend_from_slice(&[v, v, v])),
        DynamicImage::ImageLumaA8(g) => g.as_raw().chunks_exact(2).for_each(|p| out.extend_from_slice(&[p[0], p[0], p[0]])),
        DynamicImage::ImageRgb8(c) => c.as_raw().chunks_exact(3).for_each(|p| out.extend_from_slice(&[p[2], p[1], p[0]])),
        DynamicImage::ImageRgba8(c) => c.as_raw().chunks_exact(4).for_each(|p| out.extend_from_slice(&[p[2], p[1], p[0]])),
        DynamicImage::ImageLuma16(g) => g.as_raw().iter().for_each(|&v| out.extend_from_slice(&[hi(v), hi(v), hi(v)])),
        DynamicImage::ImageLumaA16(g) => g.as_raw().chunks_exact(2).for_each(|p| out.extend_from_slice(&[hi(p[0]), hi(p[0]), hi(p[0])])),
        DynamicImage::ImageRgb16(c) => c.as_raw().chunks_exact(3).for_each(|p| out.extend_from_slice(&[hi(p[2]), hi(p[1]), hi(p[0])])),
        DynamicImage::ImageRgba16(c) => c.as_raw().chunks_exact(4).for_each(|p| out.extend_from_slice(&[hi(p[2]), hi(p[1]), hi(p[0])])),
        // Float images (rare TIFFs): the image crate's clamped 0..1 → 0..255 conversion.
        other => other.to_rgb8().as_raw().chunks_exact(3).for_each(|p| out.extend_from_slice(&[p[2], p[1], p[0]])),
    }
    U8Image::new(w, h, 3, out)
}

/// OpenCV (libpng `png_set_strip_16`, libtiff path) keeps the high byte of 16-bit samples.
fn hi(v: u16) -> u8 {
    (v >> 8) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        std::fs::write(&p, b"\x89PNG\r\n\x1a\n but then nothing useful").unwrap();
        assert!(decode_bgr(&p).is_err());
        assert!(decode_bgr(&dir.path().join("missing.jpg")).is_err());
    }
}
