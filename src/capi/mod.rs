//! The `extern "C"` surface.
