//! The pixel buffer every preprocessing step works on: rows of interleaved channels (HWC),
//! 8-bit as decoded, or float32 as the reference script resizes it.

/// An image, rows of interleaved channels (HWC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image<T> {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<T>,
}

/// An 8-bit image (what `cv2.imread` returns).
pub type U8Image = Image<u8>;
/// A float32 image (`img.astype(np.float32)`).
pub type F32Image = Image<f32>;

impl<T> Image<T> {
    pub fn new(width: usize, height: usize, channels: usize, data: Vec<T>) -> Self {
        assert_eq!(data.len(), width * height * channels, "image buffer size");
        Image { width, height, channels, data }
    }
}

impl U8Image {
    /// `img.astype(np.float32)`: every level exactly.
    pub fn to_f32(&self) -> F32Image {
        Image::new(self.width, self.height, self.channels, self.data.iter().map(|&v| f32::from(v)).collect())
    }
}
