//! Compiles `proto/` with protox (pure Rust: no system `protoc` needed) and
//! generates tonic services; the encoded descriptors feed server reflection.
//! Envoy's ext_authz protos (`proto/vendor/`) are compiled into descriptors
//! only: their code comes from the `envoy-types` crate.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["tokend/v1/tokend.proto"], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("tokend_descriptor.bin"),
        protox::prost::Message::encode_to_vec(&descriptors),
    )?;
    let envoy = protox::compile(
        ["envoy/service/auth/v3/external_auth.proto"],
        ["proto/vendor"],
    )?;
    std::fs::write(
        out.join("envoy_authz_descriptor.bin"),
        protox::prost::Message::encode_to_vec(&envoy),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Encoded straight from verdicts (src/api/grpc_answer.rs).
        .extern_path(
            ".tokend.v1.IntrospectBatchResponse",
            "crate::api::grpc_answer::IntrospectBatchResponse",
        )
        .compile_fds(descriptors)?;
    Ok(())
}
