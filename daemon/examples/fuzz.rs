//! The fuzzing runner for the pure ingest path (`helpdeskd::fuzzing`):
//! seeds from `../shared/corpus` and built-in mails, structure-aware
//! mutations, a panic or a draft that cannot be rendered reported with the
//! input written to the crash folder.
//!
//! ```text
//! cargo run -p helpdeskd --example fuzz -- --secs 3600                 # an hour (dev profile)
//! cargo run -p helpdeskd --release --example fuzz -- --secs 3600       # faster, after a release build
//! cargo run -p helpdeskd --example fuzz -- --replay fuzz-crashes/panic-0123456789abcdef.eml
//! ```
//!
//! Options: `--secs N` (default 60), `--seed S` (default: random, printed),
//! `--crash-dir DIR` (default `fuzz-crashes`), `--corpus DIR` (default
//! `../shared/corpus` beside the repository; `--corpus none`: built-in seeds
//! only), `--replay FILE…` (run saved inputs once, print each finding with
//! its stack), `--write-seeds DIR` (write the built-in seeds and the corpus
//! files up to 16 KiB to DIR, e.g. as AFL++'s input folder). Exit status: 1 when something panicked, 2 when a draft could
//! not be rendered (and nothing panicked), 0 otherwise.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use helpdeskd::fuzzing::{self, Campaign, Finding};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fuzz: {e:#}");
            ExitCode::from(64)
        }
    }
}

fn run() -> Result<ExitCode> {
    let mut secs = 60.0_f64;
    let mut seed: Option<u64> = None;
    let mut crash_dir = PathBuf::from("fuzz-crashes");
    let mut corpus = fuzzing::corpus_dir();
    let mut replay: Vec<PathBuf> = Vec::new();
    let mut write_seeds: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args.next().with_context(|| format!("{flag} needs a value")),
            }
        };
        match flag.as_str() {
            "--secs" => secs = value()?.parse().context("--secs takes seconds")?,
            "--seed" => seed = Some(value()?.parse().context("--seed takes a number")?),
            "--crash-dir" => crash_dir = PathBuf::from(value()?),
            "--corpus" => {
                let v = value()?;
                corpus = (v != "none").then(|| PathBuf::from(v));
            }
            "--replay" => {
                replay.push(PathBuf::from(value()?));
                replay.extend(args.by_ref().map(PathBuf::from));
            }
            "--write-seeds" => write_seeds = Some(PathBuf::from(value()?)),
            "--bench" => {}
            other => bail!("unknown option {other:?} (see the file's head for the options)"),
        }
    }

    if let Some(dir) = write_seeds {
        std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
        let mut seeds = fuzzing::builtin_seeds();
        if let Some(c) = &corpus {
            seeds.extend(
                fuzzing::corpus_seeds(c, 16 << 10)
                    .into_iter()
                    .map(|(_, b)| b),
            );
        }
        for (i, s) in seeds.iter().enumerate() {
            let path = dir.join(format!("seed-{i:04}.eml"));
            std::fs::write(&path, s).with_context(|| format!("{}", path.display()))?;
        }
        println!("{} seeds written to {}", seeds.len(), dir.display());
        return Ok(ExitCode::SUCCESS);
    }

    if !replay.is_empty() {
        let mut code = ExitCode::SUCCESS;
        for (path, result) in fuzzing::replay(&replay) {
            match result {
                Ok(()) => println!("{}: ok", path.display()),
                Err(f) => {
                    println!("{}: {}\n{f}\n", path.display(), f.kind());
                    code = exit_for(&f, code);
                }
            }
        }
        return Ok(code);
    }

    let seed = seed.unwrap_or_else(|| {
        let mut b = [0u8; 8];
        let _ = getrandom::fill(&mut b);
        u64::from_le_bytes(b)
    });
    println!(
        "fuzzing the ingest path for {secs} s, seed {seed}, findings to {}",
        crash_dir.display()
    );
    let summary = fuzzing::campaign(&Campaign {
        duration: Duration::from_secs_f64(secs),
        seed,
        crash_dir: Some(crash_dir),
        corpus,
        verbose: true,
    });
    println!("\n{}", summary.report());
    let mut code = ExitCode::SUCCESS;
    for f in summary.findings.values() {
        code = exit_for(&f.first, code);
    }
    Ok(code)
}

fn exit_for(f: &Finding, before: ExitCode) -> ExitCode {
    match f {
        Finding::Panic { .. } => ExitCode::from(1),
        Finding::RenderErr { .. } if before == ExitCode::SUCCESS => ExitCode::from(2),
        Finding::RenderErr { .. } => before,
    }
}
