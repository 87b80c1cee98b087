//! AFL++ target: one input through `helpdeskd::fuzzing::run_one` (the
//! whole pure ingest path). A panic or a draft that cannot be rendered
//! aborts, which AFL++ records as a crash.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Err(finding) = helpdeskd::fuzzing::run_one(data) {
            eprintln!("{finding}");
            std::process::abort();
        }
    });
}
