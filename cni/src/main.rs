//! The `manul-cni` binary: see the library's docs.

fn main() {
    let (out, ok) = manul_cni::run();
    if !out.is_empty() {
        println!("{out}");
    }
    std::process::exit(if ok { 0 } else { 1 });
}
