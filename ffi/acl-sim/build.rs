//! The simulator's own SONAME, so the loader never takes it for another library.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libascendcl_sim.so");
    }
}
