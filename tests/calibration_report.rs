//! `<prefix>_report.html` of a real calibration (PP-OCRv4 det, small input, `--sensitivity`,
//! ConvTranspose left float): it renders in headless Chromium, has one sensitivity bar, one
//! drift point and one local-cosine point per quantized layer, and its numbers are those of
//! quant_report.json and sensitivity.json.

mod common;

use std::path::Path;

/// Smooth patterns with edges (not noise), roughly in the range of ImageNet-normalised pixels.
fn write_bins(dir: &Path, count: usize, seed: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for b in 0..count {
        let v: Vec<u8> = (0..3 * 64 * 64)
            .flat_map(|i| {
                let (c, y, x) = (i / 4096, (i / 64) % 64, i % 64);
                let stripe = if (y / (4 + b + seed) + x / 9).is_multiple_of(2) { 1.6f32 } else { -1.4 };
                (stripe + 0.3 * ((x * (c + 1) + y * (b + seed + 2)) as f32 * 0.21).sin()).to_le_bytes()
            })
            .collect();
        std::fs::write(dir.join(format!("batch{:04}.bin", b + 1)), v).unwrap();
    }
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// The value of `attr="…"` in the first element after `at` in `html`.
fn attr_after<'a>(html: &'a str, at: &str, attr: &str) -> &'a str {
    let from = html.find(at).unwrap_or_else(|| panic!("no {at}"));
    let key = format!("{attr}=\"");
    let start = from + html[from..].find(&key).unwrap() + key.len();
    &html[start..start + html[start..].find('"').unwrap()]
}

#[test]
fn det_report_page_renders_and_shows_the_json_reports_numbers() {
    let Some(model) = common::asset(common::DET) else { return };
    let tmp = tempfile::tempdir().unwrap();
    write_bins(&tmp.path().join("calib"), 2, 0);
    write_bins(&tmp.path().join("held"), 1, 3);
    let cfg = tmp.path().join("q.cfg");
    std::fs::write(&cfg, "batch_num: 2\nskip_layer_types: \"ConvTranspose\"\n").unwrap();
    let prefix = tmp.path().join("out/det");
    let stdout = common::ok(
        common::cli()
            .arg("calibration")
            .arg(format!("--model={}", model.display()))
            .args(["--save_path", common::path(&prefix), "--input_shape", "x:1,3,64,64", "--task", "db", "--sensitivity"])
            .arg(format!("--data_dir={}", tmp.path().join("calib").display()))
            .arg(format!("--eval_data_dir={}", tmp.path().join("held").display()))
            .arg(format!("--calibration_config={}", cfg.display())),
        "calibration",
    );
    let page = tmp.path().join("out/det_report.html");
    assert!(stdout.contains(&format!("report: {}", page.display())), "{stdout}");
    let report = json(&tmp.path().join("out/det_quant_report.json"));
    let sens = json(&tmp.path().join("out/det_sensitivity.json"));
    let html = std::fs::read_to_string(&page).unwrap();
    let layers = report["quantized_layers"].as_array().unwrap();
    let floats = report["float_layers"].as_array().unwrap();
    assert!(layers.len() > 10 && !floats.is_empty(), "{report}");

    // Self-contained: no script, stylesheet link, image or URL besides the SVG namespace.
    for banned in ["<script", "<link", "<img", "<iframe", "url("] {
        assert!(!html.contains(banned), "{banned} in the page");
    }
    assert_eq!(html.matches("http").count(), html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count());
    assert!(html.contains("1 held-out batch(es) from") && !html.contains("not-held-out"));

    // The int8 MAC share: the quantized layers' MACs are sensitivity.json's, the float ones'
    // are the float table's, and the percentage is their ratio.
    let int8: u64 = attr_after(&html, "id=\"mac-share\"", "data-int8-macs").parse().unwrap();
    let all: u64 = attr_after(&html, "id=\"mac-share\"", "data-quantizable-macs").parse().unwrap();
    let sens_layers = sens["layers"].as_array().unwrap();
    assert_eq!(int8, sens_layers.iter().map(|l| l["macs"].as_u64().unwrap()).sum::<u64>());
    let float_macs: u64 = floats
        .iter()
        .map(|f| {
            let name = f["name"].as_str().unwrap();
            let row = &html[html.find(&format!("<td class=\"name\">{name}</td>")).unwrap()..];
            assert!(row[..row.find("</tr>").unwrap()].contains(f["reason"].as_str().unwrap()), "{name}'s reason");
            attr_after(row, "<td", "title").parse::<u64>().unwrap()
        })
        .sum();
    assert!(float_macs > 0);
    assert_eq!(all, int8 + float_macs);
    assert!(html.contains(&format!("<b>{:.1} %</b>", 100.0 * int8 as f64 / all as f64)));

    // Each layer's row: its scale_d exactly, its MACs as sensitivity.json's.
    for (l, s) in layers.iter().zip(sens_layers) {
        let name = l["name"].as_str().unwrap();
        assert_eq!(s["name"].as_str(), Some(name));
        let at = html.find(&format!("<tr data-layer=\"{name}\">")).unwrap_or_else(|| panic!("no row for {name}"));
        let row = &html[at..at + html[at..].find("</tr>").unwrap()];
        assert_eq!(attr_after(row, "<tr", "title").parse::<u64>().ok(), s["macs"].as_u64(), "{name} MACs");
        let scale_d: f32 = attr_after(row, "class=\"scale-d\"", "title").parse().unwrap();
        assert_eq!(scale_d, l["scale_d"].as_f64().unwrap() as f32, "{name}");
    }

    // The sensitivity bars carry left-float SQNR − all-int8 SQNR, in graph order.
    let base = sens["all_int8"]["sqnr_db"].as_f64().unwrap();
    let bars: Vec<f64> =
        html.split("class=\"sens-bar\" data-value=\"").skip(1).map(|r| r[..r.find('"').unwrap()].parse().unwrap()).collect();
    let expected: Vec<f64> = sens_layers.iter().map(|l| l["left_float"]["sqnr_db"].as_f64().unwrap() - base).collect();
    // (serde_json's default float parsing may be off by an ulp.)
    assert_eq!(bars.len(), expected.len());
    assert!(bars.iter().zip(&expected).all(|(b, e)| (b - e).abs() < 1e-9), "{bars:?}\n{expected:?}");

    let Some(check) = common::browser::check_page_renders(&page) else { return };
    check.assert_rendered();
    assert_eq!(check.dom.matches("class=\"sens-bar\"").count(), layers.len());
    assert_eq!(check.dom.matches("class=\"drift-pt\"").count(), sens_layers.len());
    assert_eq!(check.dom.matches("class=\"local-pt\"").count(), layers.len());
    assert_eq!(check.dom.matches("<tr data-layer=").count(), layers.len());
}
