//! Does an HTML page render in a real browser? Runs headless Chromium (Debian's `chromium`)
//! on a copy of the page with a small probe script injected first thing in `<head>`: a
//! `window.onerror` hook and an `error` listener in the capture phase (which also sees failed
//! `<img>` loads) record every error into `<body data-probe-errors>`, and on `load` the probe
//! counts the `<img>` elements that finished with `naturalWidth > 0` into
//! `<body data-probe-images="LOADED/TOTAL">`. `--dump-dom` reads that back; `--screenshot`
//! takes a PNG, decoded here to count its colours.
//!
//! ```ignore
//! let Some(check) = common::browser::check_page_renders(&html) else { return };
//! check.assert_rendered();
//! ```
//!
//! Without Chromium the check is skipped loudly (`None`), and fails under CI or with
//! `ASCEND_PTQ_REQUIRE_BROWSER=1` (scripts/test.sh installs it).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the browser saw.
#[derive(Debug, Clone)]
pub struct PageCheck {
    /// `<img>` elements on the page, and those that finished loading with naturalWidth > 0.
    pub images_total: usize,
    pub images_loaded: usize,
    /// Script errors and failed resource loads, as recorded by the probe.
    pub errors: Vec<String>,
    /// The probe ran to the end (the page's `load` event fired).
    pub probe_finished: bool,
    /// The screenshot (kept next to the page as `<page>.screenshot.png`).
    pub screenshot: PathBuf,
    pub screenshot_size: (u32, u32),
    /// Distinct RGB colours in the screenshot (1 = a blank page).
    pub screenshot_colours: usize,
    /// The DOM after load, as `--dump-dom` printed it.
    pub dom: String,
}

impl PageCheck {
    /// Every image loaded, no error, the probe finished, and the screenshot is not one colour.
    pub fn assert_rendered(&self) {
        assert!(self.probe_finished, "the page's load event never ran the probe:\n{}", tail(&self.dom));
        assert!(self.errors.is_empty(), "errors in the page: {:?}", self.errors);
        assert_eq!(self.images_loaded, self.images_total, "only {} of {} <img> loaded", self.images_loaded, self.images_total);
        assert!(self.screenshot_size.0 > 0 && self.screenshot_size.1 > 0, "empty screenshot {}", self.screenshot.display());
        assert!(self.screenshot_colours > 1, "the screenshot {} is a single colour", self.screenshot.display());
    }
}

fn tail(s: &str) -> &str {
    &s[s.len().saturating_sub(2000)..]
}

/// The Chromium binary, or None (skipped loudly; a failure under CI / ASCEND_PTQ_REQUIRE_BROWSER=1).
pub fn chromium() -> Option<PathBuf> {
    let from_env = std::env::var_os("ASCEND_PTQ_CHROMIUM").map(PathBuf::from);
    let candidates = from_env.into_iter().chain(["chromium", "chromium-browser", "google-chrome"].map(PathBuf::from));
    for c in candidates {
        if Command::new(&c).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
            return Some(c);
        }
    }
    if super::required("ASCEND_PTQ_REQUIRE_BROWSER") {
        panic!("no headless browser: apt-get install chromium (or set ASCEND_PTQ_CHROMIUM)");
    }
    eprintln!("\n*** SKIPPED: chromium is missing (apt-get install chromium) ***\n");
    None
}

const PROBE: &str = r#"<script>(function(){
var errors=[];
function note(text){errors.push(String(text));if(document.body){document.body.setAttribute('data-probe-errors',JSON.stringify(errors));}}
window.onerror=function(msg,src,line){note('script: '+msg+' at '+src+':'+line);};
window.addEventListener('error',function(e){var t=e.target;if(t&&t!==window&&t.tagName){note('load failed: <'+t.tagName.toLowerCase()+'> '+String(t.src||t.href||'').slice(0,80));}},true);
window.addEventListener('load',function(){
var imgs=document.images,ok=0;
for(var i=0;i<imgs.length;i++){if(imgs[i].complete&&imgs[i].naturalWidth>0){ok++;}}
document.body.setAttribute('data-probe-errors',JSON.stringify(errors));
document.body.setAttribute('data-probe-images',ok+'/'+imgs.length);
});
})();</script>"#;

/// The page with the probe as the first element of `<head>` (or in front of everything).
fn with_probe(html: &str) -> String {
    match html.find("<head>") {
        Some(at) => format!("{}{PROBE}{}", &html[..at + 6], &html[at + 6..]),
        None => format!("{PROBE}{html}"),
    }
}

/// Runs `cmd` to its end, killed after `limit` (a hung browser fails the check, it does not
/// hang the test run); returns stdout, or the reason it failed.
fn run(mut cmd: Command, limit: Duration) -> Result<String, String> {
    let out_file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let mut child = cmd
        .stdout(out_file.reopen().map_err(|e| e.to_string())?)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let out = std::fs::read_to_string(out_file.path()).map_err(|e| e.to_string())?;
            return if status.success() { Ok(out) } else { Err(format!("{cmd:?} exited with {status}")) };
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} did not finish within {} s", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn browser(chrome: &Path, profile: &Path) -> Command {
    let mut c = Command::new(chrome);
    c.args(["--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--no-first-run", "--mute-audio"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--virtual-time-budget=10000");
    c
}

/// Loads `html` (a file) in headless Chromium at `width`×`height` (the screenshot's size) and
/// reports what it saw; None when no browser is installed (see [`chromium`]).
pub fn check_page(html: &Path, width: u32, height: u32) -> Option<PageCheck> {
    let chrome = chromium()?;
    let text = std::fs::read_to_string(html).unwrap_or_else(|e| panic!("{}: {e}", html.display()));
    // The probed copy sits beside the page, so relative references resolve as for the page.
    let dir = html.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let probed = tempfile::Builder::new().suffix(".html").tempfile_in(dir).expect("temp page");
    std::fs::write(probed.path(), with_probe(&text)).expect("write probed page");
    let url = format!("file://{}", probed.path().canonicalize().expect("absolute page path").display());
    let profile = tempfile::tempdir().expect("browser profile dir");
    let limit = Duration::from_secs(180);

    let mut dump = browser(&chrome, profile.path());
    dump.args(["--dump-dom", &url]);
    let dom = run(dump, limit).unwrap_or_else(|e| panic!("chromium --dump-dom: {e}"));

    let screenshot = html.with_extension("screenshot.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut shot = browser(&chrome, profile.path());
    shot.arg(format!("--screenshot={}", screenshot.display())).arg(format!("--window-size={width},{height}")).arg(&url);
    run(shot, limit).unwrap_or_else(|e| panic!("chromium --screenshot: {e}"));
    let png = image::open(&screenshot).unwrap_or_else(|e| panic!("screenshot {}: {e}", screenshot.display())).to_rgb8();
    let colours: HashSet<[u8; 3]> = png.pixels().map(|p| p.0).collect();

    let body = dom.find("<body").map(|at| &dom[at..dom[at..].find('>').map_or(dom.len(), |e| at + e)]).unwrap_or("");
    let attr = |name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let at = body.find(&key)? + key.len();
        Some(body[at..at + body[at..].find('"')?].replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    };
    let images = attr("data-probe-images");
    let (loaded, total) = images
        .as_deref()
        .and_then(|v| v.split_once('/'))
        .map(|(a, b)| (a.parse().unwrap_or(0), b.parse().unwrap_or(0)))
        .unwrap_or((0, dom.matches("<img").count()));
    let errors: Vec<String> = attr("data-probe-errors").and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default();
    Some(PageCheck {
        images_total: total,
        images_loaded: loaded,
        errors,
        probe_finished: images.is_some(),
        screenshot,
        screenshot_size: png.dimensions(),
        screenshot_colours: colours.len(),
        dom,
    })
}

/// [`check_page`] at 1280×2400.
pub fn check_page_renders(html: &Path) -> Option<PageCheck> {
    check_page(html, 1280, 2400)
}

/// Writes a minimal page around `body` to `dir/name` (for testing the check itself).
pub fn sample_page(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>t</title></head><body>{body}</body></html>"))
        .unwrap();
    path
}
