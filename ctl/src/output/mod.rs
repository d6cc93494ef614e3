//! Printing: tables, JSON and YAML, and [`emit`], which writes to stdout
//! and ends quietly when the reader has gone (`manulctl get ... | head`).

pub mod columns;
pub mod table;

use std::io::Write;

use crate::cli::Output;

/// Writes `text` to stdout. A closed pipe ends the process with success
/// (the reader wanted no more); other write errors end it with code 1.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `value` as JSON (pretty) or YAML, ending in a newline.
pub fn serialize(value: &impl serde::Serialize, format: Output) -> anyhow::Result<String> {
    Ok(match format {
        Output::Yaml => serde_yaml_ng::to_string(value)?,
        _ => {
            let mut s = serde_json::to_string_pretty(value)?;
            s.push('\n');
            s
        }
    })
}
