//! Compiles the test-only conformance contract (with the product's contracts on the include
//! path for the access and http options).

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed={}", root.join("proto").display());
    let mut compiler = protox::Compiler::new([root.join("proto"), root.join("../proto")]).expect("include paths");
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(["conformance/v1/conformance.proto"]).expect("the conformance contract compiles");
    std::fs::write(out.join("conformance.bin"), compiler.encode_file_descriptor_set()).unwrap();
    let mut config = prost_build::Config::new();
    config.extern_path(".google.api", "::complianceiq_proto::google::api");
    config.extern_path(".complianceiq", "::complianceiq_proto::complianceiq");
    config.service_generator(tonic_prost_build::configure().service_generator());
    config.compile_fds(compiler.file_descriptor_set()).expect("generating conformance code");
}
