//! The options of `ascend-ptq aipp`, defined once: the command line (clap, flattened next to
//! the parameter file and `--out`) and the options JSON of `aptq_aipp` (serde) both build
//! [`AippArgs`] and turn it into [`AippOptions`] with [`AippArgs::to_options`], so both
//! report the same errors. Flag and key are the same field (`--src_size` ↔ `"src_size"`);
//! the field docs are the `--help` text and the JSON key reference.

use std::convert::Infallible;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::{AippError, AippOptions, InputFormat, parse_src_size};

/// The default `--input_format`.
pub const DEFAULT_INPUT_FORMAT: &str = "RGB888_U8";

// No doc comment on the struct: clap would take it as the `aipp` command's about text.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AippArgs {
    /// Frame format the application feeds: RGB888_U8 (packed, in OpenCV's B,G,R order), YUV420SP_U8 (NV12,
    /// full-range BT.601), YUV400_U8 (grey, for des_channels 1).
    #[arg(long = "input_format", alias = "input-format", default_value = DEFAULT_INPUT_FORMAT)]
    #[serde(default = "default_input_format")]
    pub input_format: String,
    /// Fed frame size "W,H" (default: des_width,des_height); a larger frame is centre-cropped.
    // JSON: [W, H] (or "W,H").
    #[arg(long = "src_size", alias = "src-size")]
    #[serde(default)]
    pub src_size: Option<SrcSize>,
    /// Which `*_pre_params` section to use (default: det_pre_params, or the only one).
    #[arg(long)]
    #[serde(default)]
    pub section: Option<String>,
}

fn default_input_format() -> String {
    DEFAULT_INPUT_FORMAT.to_string()
}

impl Default for AippArgs {
    fn default() -> Self {
        AippArgs { input_format: default_input_format(), src_size: None, section: None }
    }
}

impl AippArgs {
    /// The AIPP options, with the format name and the frame size checked.
    pub fn to_options(&self) -> Result<AippOptions, AippError> {
        let input_format: InputFormat = self.input_format.parse()?;
        let src_size = match &self.src_size {
            None => None,
            Some(SrcSize::Text(text)) => Some(parse_src_size(text)?),
            Some(SrcSize::Pair(w, h)) => Some((*w, *h)),
        };
        Ok(AippOptions { input_format, src_size })
    }
}

/// A fed frame size as given: "W,H" text (the command line, checked by
/// [`AippArgs::to_options`]) or a `[W, H]` JSON array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrcSize {
    Text(String),
    Pair(usize, usize),
}

impl std::str::FromStr for SrcSize {
    type Err = Infallible;
    fn from_str(s: &str) -> Result<Self, Infallible> {
        // Kept as text: the check is in to_options, where the C options are checked too.
        Ok(SrcSize::Text(s.to_string()))
    }
}

impl<'de> serde::Deserialize<'de> for SrcSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SrcSizeVisitor;
        impl<'de> Visitor<'de> for SrcSizeVisitor {
            type Value = SrcSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[W, H] or \"W,H\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<SrcSize, E> {
                Ok(SrcSize::Text(s.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SrcSize, A::Error> {
                let w = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let h = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
                Ok(SrcSize::Pair(w, h))
            }
        }
        deserializer.deserialize_any(SrcSizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_pair_give_the_same_options() {
        let text = AippArgs { src_size: Some("330,260".parse().unwrap()), ..AippArgs::default() };
        let pair: AippArgs = serde_json::from_str(r#"{"src_size": [330, 260]}"#).unwrap();
        assert_eq!(text.to_options().unwrap().src_size, Some((330, 260)));
        assert_eq!(pair.to_options().unwrap().src_size, Some((330, 260)));
        assert_eq!(pair.to_options().unwrap().input_format, InputFormat::Rgb888U8);
        let bad = AippArgs { src_size: Some("330x260".parse().unwrap()), ..AippArgs::default() };
        assert_eq!(bad.to_options().unwrap_err().to_string(), "--src_size: '330x260' is not W,H with positive integers");
        let bad = AippArgs { input_format: "BGR888".into(), ..AippArgs::default() };
        assert!(bad.to_options().unwrap_err().to_string().starts_with("--input_format: unknown format 'BGR888'"));
    }
}
