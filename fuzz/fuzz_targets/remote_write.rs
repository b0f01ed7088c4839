//! Remote write bodies: snappy block decompression, then the protobuf
//! decoder on both the decompressed and the raw bytes, walking every view
//! of the decoded request (see `strata_remote_write::fuzzing`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strata_remote_write::fuzzing::check_remote_write(data);
});
