//! The headless-browser page check of tests/common/browser.rs itself: a good page passes, and
//! a broken image and a script error are both caught.

mod common;

use common::browser::{check_page_renders, sample_page};

/// A 2×1 PNG (one red, one blue pixel).
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAIAAAB7QOjdAAAADUlEQVR4nGP4zwAE/wEHAAH/4iOeWQAAAABJRU5ErkJggg==";

#[test]
fn a_good_page_passes_and_broken_images_and_script_errors_are_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let img = format!("<img src=\"data:image/png;base64,{PNG}\" width=\"200\" height=\"100\">");
    let good = sample_page(tmp.path(), "good.html", &format!("<h1>fine</h1>{img}{img}"));
    let Some(check) = check_page_renders(&good) else { return };
    check.assert_rendered();
    assert_eq!((check.images_loaded, check.images_total), (2, 2));

    let bad = sample_page(
        tmp.path(),
        "bad.html",
        &format!("{img}<img src=\"data:image/png;base64,AAAA\" width=\"20\" height=\"20\"><script>no_such_function();</script>"),
    );
    let check = check_page_renders(&bad).unwrap();
    assert_eq!((check.images_loaded, check.images_total), (1, 2), "{check:?}");
    assert!(check.errors.iter().any(|e| e.contains("no_such_function")), "{:?}", check.errors);
    assert!(check.errors.iter().any(|e| e.contains("load failed: <img>")), "{:?}", check.errors);

    let blank = sample_page(tmp.path(), "blank.html", "");
    let check = check_page_renders(&blank).unwrap();
    assert_eq!(check.screenshot_colours, 1, "an empty page is one colour");
    assert!(std::panic::catch_unwind(|| check.assert_rendered()).is_err(), "a blank page must not pass");
}
