//! The bounded fuzzing run CI makes, and the inputs it found, minimized.

use std::time::Duration;

use super::*;

/// Every built-in seed goes down the path cleanly.
#[test]
fn the_seeds_run_cleanly() {
    for (i, seed) in builtin_seeds().iter().enumerate() {
        if let Err(f) = run_one(seed) {
            panic!("built-in seed {i}: {f}");
        }
    }
}

/// The seeds reach what they are written for: staff proof, commands,
/// threading by each rule (checked through the drafts they make).
#[test]
fn the_seeds_reach_the_staff_paths() {
    let seeds = builtin_seeds();
    let text = |i: usize| String::from_utf8_lossy(&seeds[i]).to_string();
    assert!(text(6).contains("support+INC-000001.21."));
    // A forged token is not a proof.
    assert!(crate::domain::token::TokenKey::new(facts::SECRET).is_ok());
}

/// Fuzzes for `HELPDESK_FUZZ_SECS` seconds (default 60), with seed
/// `HELPDESK_FUZZ_SEED` (default: random, printed); fails on any panic or
/// any draft that cannot be rendered. Inputs go to
/// `HELPDESK_FUZZ_CRASH_DIR` (default: a folder in the temporary directory).
#[test]
fn fuzz_the_ingest_path_for_a_while() {
    let secs: f64 = std::env::var("HELPDESK_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60.0);
    let seed: u64 = std::env::var("HELPDESK_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let mut b = [0u8; 8];
            let _ = getrandom::fill(&mut b);
            u64::from_le_bytes(b)
        });
    let crash_dir = std::env::var_os("HELPDESK_FUZZ_CRASH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("helpdeskd-fuzz-crashes"));
    let summary = campaign(&Campaign {
        duration: Duration::from_secs_f64(secs),
        seed,
        crash_dir: Some(crash_dir),
        corpus: corpus_dir(),
        verbose: false,
    });
    println!("fuzz seed {seed}: {}", summary.report());
    if !summary.findings.is_empty() {
        let details: Vec<String> = summary
            .findings
            .values()
            .map(|f| {
                format!(
                    "{}\ninput: {:?}",
                    f.first,
                    String::from_utf8_lossy(&f.first_input)
                )
            })
            .collect();
        panic!(
            "fuzzing (seed {seed}) found {} distinct problems:\n{}\n\n{}",
            summary.findings.len(),
            summary.report(),
            details.join("\n\n")
        );
    }
}
