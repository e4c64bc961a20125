//! No panic may cross the C boundary: every `extern "C"` function in `src/capi` must be
//! `#[unsafe(no_mangle)]` and its whole body one `guard(…)` or `guard_or(…)` call. This test
//! reads the source text, so a new export without the guard fails here, naming it; the
//! exports found are checked against the generated header, so the scan cannot pass on a
//! source layout it no longer understands.

use std::collections::BTreeSet;
use std::path::PathBuf;

/// One `extern "C" fn` found in the source.
#[derive(Debug)]
struct Export {
    name: String,
    no_mangle: bool,
    /// The body, comments removed and whitespace trimmed.
    body: String,
}

/// `text` with `//` comments blanked out (string and char literals kept), so braces and
/// parentheses can be counted on what is left.
fn without_comments(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            // A raw string r"…" or r#"…"#: kept with its brackets blanked.
            'r' if !ident_before(&chars, i) && raw_string_hashes(&chars, i + 1).is_some() => {
                let hashes = raw_string_hashes(&chars, i + 1).unwrap();
                let close: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
                let body_start = i + 2 + hashes;
                let rest: String = chars[body_start..].iter().collect();
                let len = rest.find(&close).expect("closed raw string");
                out.push('"');
                out.extend(rest[..len].chars().map(|c| if matches!(c, '{' | '}' | '(' | ')') { '_' } else { c }));
                out.push('"');
                i = body_start + rest[..len].chars().count() + close.len();
            }
            '"' => {
                out.push('"');
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    // Braces inside strings are not code: keep the text, drop the braces.
                    out.push(if matches!(chars.get(i), Some('{' | '}' | '(' | ')')) { '_' } else { chars[i] });
                    i += 1;
                }
                out.push('"');
                i += 1;
            }
            // A char literal such as '\0' or '{' (a lifetime like 'a has no closing quote).
            '\'' if chars.get(i + 2) == Some(&'\'') || chars.get(i + 1) == Some(&'\\') => {
                out.push_str("'_'");
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// For `#…#"` at `i`: the number of `#`.
fn raw_string_hashes(chars: &[char], i: usize) -> Option<usize> {
    let hashes = chars[i..].iter().take_while(|&&c| c == '#').count();
    (chars.get(i + hashes) == Some(&'"')).then_some(hashes)
}

/// The index just past the bracket that closes the one at `open`.
fn matching(code: &[u8], open: usize) -> usize {
    let (opening, closing) = (code[open], if code[open] == b'(' { b')' } else { b'}' });
    let mut depth = 0usize;
    for (i, &c) in code.iter().enumerate().skip(open) {
        if c == opening {
            depth += 1;
        } else if c == closing {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
    }
    panic!("unbalanced bracket at byte {open}");
}

fn exports(source: &str) -> Vec<Export> {
    let code = without_comments(source);
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("extern \"C\" fn ").map(|i| i + from) {
        let name_start = at + "extern \"C\" fn ".len();
        let params = name_start + code[name_start..].find('(').expect("a parameter list");
        let name = code[name_start..params].trim().to_string();
        let after_params = matching(bytes, params);
        let open = after_params + code[after_params..].find('{').expect("a body");
        let close = matching(bytes, open);
        // The attributes of this item: the text since the previous item ended.
        let item_start = code[..at].rfind(['}', ';']).map_or(0, |i| i + 1);
        found.push(Export {
            name,
            no_mangle: code[item_start..at].contains("#[unsafe(no_mangle)]"),
            body: code[open + 1..close - 1].trim().to_string(),
        });
        from = close;
    }
    found
}

/// Why `export` is not behind the guard, or None when it is.
fn problem(export: &Export) -> Option<String> {
    if !export.no_mangle {
        return Some(format!("{} is extern \"C\" without #[unsafe(no_mangle)]", export.name));
    }
    let Some(call) = ["guard(", "guard_or("].iter().find(|g| export.body.starts_with(**g)) else {
        return Some(format!("{}: the body does not start with guard(…) or guard_or(…): {:.60}…", export.name, export.body));
    };
    let open = call.len() - 1;
    let end = matching(export.body.as_bytes(), open);
    if !export.body[end..].trim().is_empty() {
        return Some(format!("{}: code after the guard call: {:.60}", export.name, &export.body[end..]));
    }
    None
}

fn capi_sources() -> Vec<(PathBuf, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/capi");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "rs")).collect();
    files.sort();
    files.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
}

/// The function names the header declares (comments removed first).
fn header_functions() -> BTreeSet<String> {
    let header = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("include/ascend_ptq.h")).unwrap();
    let mut code = String::new();
    let mut rest = header.as_str();
    while let Some(start) = rest.find("/*") {
        code.push_str(&rest[..start]);
        rest = &rest[start + rest[start..].find("*/").expect("closed comment") + 2..];
    }
    code.push_str(rest);
    let mut names = BTreeSet::new();
    for (i, _) in code.match_indices("aptq_") {
        let name: String = code[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if code[i + name.len()..].trim_start().starts_with('(') {
            names.insert(name);
        }
    }
    names
}

#[test]
fn every_export_is_behind_the_panic_guard() {
    let mut names = BTreeSet::new();
    let mut problems = Vec::new();
    for (path, source) in capi_sources() {
        for export in exports(&source) {
            if let Some(p) = problem(&export) {
                problems.push(format!("{}: {p}", path.display()));
            }
            assert!(names.insert(export.name.clone()), "{} exported twice", export.name);
        }
    }
    assert!(problems.is_empty(), "exports not behind guard/guard_or:\n{}", problems.join("\n"));
    // The scan saw every export: the same set as the header cbindgen generates.
    let declared = header_functions();
    assert!(declared.len() >= 20, "the header scan found only {declared:?}");
    assert_eq!(names, declared, "the exports found in src/capi differ from include/ascend_ptq.h");
    for accessor in
        ["aptq_version", "aptq_last_error", "aptq_string_free", "aptq_model_num_inputs", "aptq_outputs_name", "aptq_acl_is_simulator"]
    {
        assert!(names.contains(accessor), "{accessor} not found");
    }
}

#[test]
fn the_check_catches_an_unguarded_export() {
    let source = r#"
/// Doc with guard( in it and a brace { that is not code.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_ok(p: *const c_char) -> usize {
    // SAFETY: a comment first is fine.
    guard_or(0, || unsafe { p.as_ref() }.map_or(0, |_| "}{".len()))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn aptq_unguarded(m: *const aptq_model) -> usize {
    unsafe { m.as_ref() }.map_or(0, |m| m.count)
}

#[unsafe(no_mangle)]
pub extern "C" fn aptq_after() -> aptq_status {
    let status = guard(|| Ok(()));
    status
}

#[unsafe(no_mangle)]
pub extern "C" fn aptq_trailing() -> aptq_status {
    guard(|| Ok(()));
    aptq_status::APTQ_OK
}

pub extern "C" fn aptq_hidden() {
    guard_or((), || ())
}
"#;
    let found = exports(source);
    let names: Vec<&str> = found.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["aptq_ok", "aptq_unguarded", "aptq_after", "aptq_trailing", "aptq_hidden"]);
    let flagged: Vec<&str> = found.iter().filter(|e| problem(e).is_some()).map(|e| e.name.as_str()).collect();
    assert_eq!(flagged, ["aptq_unguarded", "aptq_after", "aptq_trailing", "aptq_hidden"]);
}
