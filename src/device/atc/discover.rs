//! Finding the `atc` executable: `--atc PATH`, then `PATH`, then `$ASCEND_TOOLKIT_HOME/bin`,
//! then the default toolkit install `/usr/local/Ascend/ascend-toolkit/latest/bin`.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::error::AtcError;

/// Where CANN's installer puts the toolkit by default (root install).
pub const DEFAULT_TOOLKIT_BIN: &str = "/usr/local/Ascend/ascend-toolkit/latest/bin";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtcLocation {
    pub path: PathBuf,
    /// How it was found: "--atc", "PATH", "$ASCEND_TOOLKIT_HOME/bin" or the default toolkit dir.
    pub found_by: String,
    /// A hint to print, e.g. when ATC was found in the toolkit but its environment is not loaded.
    pub note: Option<String>,
}

/// Finds ATC using this process's `PATH` and `ASCEND_TOOLKIT_HOME`.
pub fn find_atc(explicit: Option<&Path>) -> Result<AtcLocation, AtcError> {
    find_atc_in(explicit, std::env::var_os("PATH"), std::env::var_os("ASCEND_TOOLKIT_HOME"), Path::new(DEFAULT_TOOLKIT_BIN))
}

/// [`find_atc`] with the environment passed in (testable).
pub fn find_atc_in(
    explicit: Option<&Path>,
    path_var: Option<OsString>,
    toolkit_home: Option<OsString>,
    default_bin: &Path,
) -> Result<AtcLocation, AtcError> {
    if let Some(p) = explicit {
        if !p.exists() {
            return Err(AtcError::arg("--atc", format!("{}: no such file", p.display())));
        }
        if !is_executable(p) {
            return Err(AtcError::arg("--atc", format!("{}: not an executable file", p.display())));
        }
        return Ok(AtcLocation { path: p.to_path_buf(), found_by: "--atc".into(), note: None });
    }
    let mut looked = Vec::new();
    if let Some(path_var) = &path_var {
        for dir in std::env::split_paths(path_var).filter(|d| !d.as_os_str().is_empty()) {
            let candidate = dir.join("atc");
            if is_executable(&candidate) {
                return Ok(AtcLocation { path: candidate, found_by: "PATH".into(), note: None });
            }
        }
    }
    looked.push("PATH".to_string());
    let unloaded_note = |dir: &Path| {
        Some(format!(
            "ATC was found in {} but CANN's environment is not loaded (ASCEND_TOOLKIT_HOME is unset); \
             if ATC fails to load its libraries, run `source {}` first",
            dir.display(),
            set_env_path(dir).display()
        ))
    };
    match toolkit_home.as_ref().filter(|h| !h.is_empty()) {
        Some(home) => {
            let bin = Path::new(home).join("bin");
            let candidate = bin.join("atc");
            if is_executable(&candidate) {
                return Ok(AtcLocation { path: candidate, found_by: "$ASCEND_TOOLKIT_HOME/bin".into(), note: None });
            }
            looked.push(format!("{} ($ASCEND_TOOLKIT_HOME/bin)", bin.display()));
        }
        None => looked.push("$ASCEND_TOOLKIT_HOME/bin (ASCEND_TOOLKIT_HOME is not set)".into()),
    }
    let candidate = default_bin.join("atc");
    if is_executable(&candidate) {
        let note = if toolkit_home.is_none() { unloaded_note(default_bin) } else { None };
        return Ok(AtcLocation { path: candidate, found_by: default_bin.display().to_string(), note });
    }
    looked.push(default_bin.display().to_string());
    Err(AtcError::NotFound(format!(
        "ATC (the `atc` model converter) was not found; looked in: {}.\n\
         ATC is part of Huawei CANN's toolkit (Ascend-cann-toolkit). Install the toolkit, then load its \
         environment in this shell before running `ascend-ptq build`:\n    \
         source /usr/local/Ascend/ascend-toolkit/set_env.sh\n\
         (for a non-root install: source $HOME/Ascend/ascend-toolkit/set_env.sh), or pass --atc /path/to/atc.",
        looked.join(", ")
    )))
}

/// `<toolkit>/set_env.sh` for a `<toolkit>/latest/bin` or `<toolkit>/<version>/bin` dir.
fn set_env_path(bin: &Path) -> PathBuf {
    bin.parent().and_then(Path::parent).map_or_else(|| PathBuf::from("set_env.sh"), |t| t.join("set_env.sh"))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_atc(dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let p = dir.join("atc");
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn search_order_is_flag_path_toolkit_home_default() {
        let t = tempfile::tempdir().unwrap();
        let (on_path, home, default) = (t.path().join("p"), t.path().join("home"), t.path().join("toolkit/latest/bin"));
        let a_path = fake_atc(&on_path);
        let a_home = fake_atc(&home.join("bin"));
        let a_default = fake_atc(&default);
        let explicit = t.path().join("mine");
        let a_explicit = fake_atc(&explicit);
        let path_var = Some(OsString::from(format!("/nonexistent:{}", on_path.display())));
        let home_var = Some(home.clone().into_os_string());
        let found = |e: Option<&Path>, p: Option<OsString>, h: Option<OsString>| find_atc_in(e, p, h, &default).unwrap();
        assert_eq!(found(Some(&a_explicit), path_var.clone(), home_var.clone()).path, a_explicit);
        assert_eq!(found(None, path_var.clone(), home_var.clone()).path, a_path);
        assert_eq!(found(None, None, home_var.clone()).path, a_home);
        let d = found(None, None, None);
        assert_eq!(d.path, a_default);
        assert!(d.note.unwrap().contains(&format!("source {}", t.path().join("toolkit/set_env.sh").display())));
    }

    #[test]
    fn missing_atc_explains_cann_and_set_env() {
        let t = tempfile::tempdir().unwrap();
        let e = find_atc_in(None, Some(OsString::new()), None, &t.path().join("none")).unwrap_err().to_string();
        assert!(e.contains("CANN") && e.contains("set_env.sh") && e.contains("ASCEND_TOOLKIT_HOME is not set"), "{e}");
        let e = find_atc_in(Some(&t.path().join("atc")), None, None, t.path()).unwrap_err().to_string();
        assert!(e.starts_with("--atc: ") && e.contains("no such file"), "{e}");
        std::fs::write(t.path().join("plain"), "").unwrap();
        let e = find_atc_in(Some(&t.path().join("plain")), None, None, t.path()).unwrap_err().to_string();
        assert!(e.contains("not an executable"), "{e}");
    }
}
