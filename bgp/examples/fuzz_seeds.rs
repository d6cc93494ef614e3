//! Writes the seed inputs of the `decode` fuzz target
//! (`manul_bgp::wire::fuzzing::seeds`) into a directory, one file each:
//!
//! ```text
//! cargo run -p manul-bgp --example fuzz_seeds -- bgp/fuzz/corpus/decode
//! ```

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("bgp/fuzz/corpus/decode"), PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    let seeds = manul_bgp::wire::fuzzing::seeds();
    for (name, input) in &seeds {
        std::fs::write(dir.join(format!("seed-{name}")), input)?;
    }
    println!("wrote {} seeds to {}", seeds.len(), dir.display());
    Ok(())
}
