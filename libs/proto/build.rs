//! Compiles `proto/*.proto` with protox (a protobuf compiler written in
//! Rust), so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        root.join("prometheus/remote.proto"),
        root.join("ingester.proto"),
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let fds = protox::compile(&files, [&root])?;
    tonic_prost_build::configure()
        // The push RPC carries the remote write bytes untouched: the
        // distributor forwards series verbatim and the ingester decodes
        // them with the borrowing decoder of `strata-remote-write`.
        .extern_path(".prometheus.WriteRequest", "crate::RawWriteRequest")
        .bytes(".strata.ingester.Chunk.data")
        .compile_fds(fds)?;
    Ok(())
}
