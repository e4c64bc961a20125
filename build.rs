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
    Ok(())
}
