//! Generates the ONNX and Ascend GE (`ge.proto`) protobuf types from our own `proto/*.proto` with protox (a pure-Rust
//! protobuf compiler), so no `protoc` binary is needed on the build machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/onnx.proto", "proto/ge_ir.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    // Tests compile C programs with the `cc` crate, which needs the target triple.
    println!("cargo:rustc-env=TARGET_TRIPLE={}", std::env::var("TARGET")?);
    // The cdylib's SONAME: `libascend_ptq.so.<major>`, or `libascend_ptq.so.0.<minor>` while the
    // major version is 0 (under semver 0.1 → 0.2 is a breaking change, so an application linked
    // against 0.1 must not load 0.2). scripts/install.sh installs the library under this name.
    // `rustc-link-arg`, not `rustc-cdylib-link-arg`: cargo passes a cdylib link arg on to every
    // cdylib that depends on this package (cargo issue 9562), and it comes last there, so the
    // ACL simulator (ffi/acl-sim) would get this SONAME. A plain link arg stays in this package;
    // its executables (the CLI, the tests) get it too, where it is inert.
    let soname = soname(&std::env::var("CARGO_PKG_VERSION_MAJOR")?, &std::env::var("CARGO_PKG_VERSION_MINOR")?);
    println!("cargo:rustc-env=ASCEND_PTQ_SONAME={soname}");
    if std::env::var("CARGO_CFG_TARGET_OS")? == "linux" {
        println!("cargo:rustc-link-arg=-Wl,-soname,{soname}");
    }
    Ok(())
}

fn soname(major: &str, minor: &str) -> String {
    if major == "0" { format!("libascend_ptq.so.0.{minor}") } else { format!("libascend_ptq.so.{major}") }
}
