//! Unique-prefix long options, as Python's argparse (and so amct_onnx) accepts them: the
//! guide's literal `--data_type float32` means `--data_types`. A prefix that matches several
//! options is an error listing them, in argparse's words. clap's own `infer_long_args` would
//! reject an ambiguous prefix only as "unexpected argument", without the candidates, so the
//! arguments are rewritten to the full names before clap sees them (docs/ascend-formats.md §1.1).

use std::ffi::OsString;

use clap::Command;

/// Rewrites every `--prefix` / `--prefix=value` of `args` (program name first) that is a
/// unique prefix of one long option of the sub-command it belongs to. Exact names, unknown
/// names (left for clap to report) and everything after `--` are kept as they are.
pub fn expand(args: Vec<OsString>, mut root: Command) -> Result<Vec<OsString>, String> {
    root.build();
    let mut out = Vec::with_capacity(args.len());
    let mut command = &root;
    let mut verbatim = false;
    for (i, arg) in args.into_iter().enumerate() {
        let text = match arg.to_str() {
            Some(t) if i > 0 && !verbatim => t.to_string(),
            _ => {
                out.push(arg);
                continue;
            }
        };
        if text == "--" {
            verbatim = true;
            out.push(arg);
            continue;
        }
        let Some(option) = text.strip_prefix("--") else {
            // The first plain word at the top selects the sub-command whose options follow.
            if let Some(sub) = root.find_subcommand(&text).filter(|_| std::ptr::eq(command, &root)) {
                command = sub;
            }
            out.push(arg);
            continue;
        };
        let (name, value) = match option.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (option, None),
        };
        let full = full_name(command, name)?;
        out.push(match value {
            Some(v) => format!("--{full}={v}").into(),
            None => format!("--{full}").into(),
        });
    }
    Ok(out)
}

/// The long option `name` abbreviates in `command`, or `name` itself when it is exact or
/// matches nothing.
fn full_name(command: &Command, name: &str) -> Result<String, String> {
    let longs: Vec<&str> =
        command.get_arguments().flat_map(|a| a.get_long().into_iter().chain(a.get_all_aliases().into_iter().flatten())).collect();
    if name.is_empty() || longs.contains(&name) {
        return Ok(name.to_string());
    }
    let mut matches: Vec<&str> = command
        .get_arguments()
        .filter(|a| a.get_long().into_iter().chain(a.get_all_aliases().into_iter().flatten()).any(|l| l.starts_with(name)))
        .filter_map(|a| a.get_long())
        .collect();
    matches.dedup();
    match matches.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Ok(name.to_string()),
        many => {
            let list: Vec<String> = many.iter().map(|m| format!("--{m}")).collect();
            Err(format!("ambiguous option: --{name} could match {}", list.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn run(line: &[&str]) -> Result<Vec<String>, String> {
        let args = line.iter().map(OsString::from).collect();
        expand(args, crate::cli::Cli::command()).map(|v| v.into_iter().map(|a| a.into_string().unwrap()).collect())
    }

    #[test]
    fn unique_prefixes_become_the_full_name_in_both_forms() {
        let got = run(&["aptq", "calibration", "--data_type", "float32", "--save_p=out/x", "--batch", "2"]).unwrap();
        assert_eq!(got, ["aptq", "calibration", "--data_types", "float32", "--save_path=out/x", "--batch_num", "2"]);
        // Exact names, values, unknown options and everything after `--` stay.
        let got = run(&["aptq", "calibration", "--model", "--data", "--nope", "--", "--data_t"]);
        assert_eq!(got.unwrap_err(), "ambiguous option: --data could match --data_dir, --data_types");
        let got = run(&["aptq", "calibration", "--model", "m.onnx", "--nope", "--", "--data_t"]).unwrap();
        assert_eq!(got, ["aptq", "calibration", "--model", "m.onnx", "--nope", "--", "--data_t"]);
    }

    #[test]
    fn each_sub_command_has_its_own_options() {
        let got = run(&["aptq", "inspect", "m.onnx", "--input_s", "x:1"]).unwrap();
        assert_eq!(got[3], "--input_shape");
        assert!(run(&["aptq", "calibration", "--h"]).unwrap()[2] == "--help");
    }
}
