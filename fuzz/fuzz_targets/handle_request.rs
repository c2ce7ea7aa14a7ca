//! Any bytes through the DNS server's request handler, over UDP and TCP
//! limits, against the example-like zone of `signpost_dns::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    signpost_dns::fuzzing::exercise(data);
});
