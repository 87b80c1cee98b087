//! A fuzzing run: the seeds once each as they are, then mutations until the
//! time is up. Each finding's input is written to the crash folder (the
//! first few per signature) with the command that replays it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::mutate::{Mutator, builtin_seeds, corpus_seeds};
use super::{Finding, run_one};

/// Inputs kept per signature: a known bug found again costs a counter, not a file.
const FILES_PER_SIGNATURE: usize = 3;
/// Corpus files larger than this are run once as they are but not mutated.
const MAX_MUTATED_SEED: u64 = 256 << 10;
/// An input that takes longer than this is reported (not failed) as slow.
const SLOW: Duration = Duration::from_secs(2);

/// How to run.
#[derive(Clone, Debug)]
pub struct Campaign {
    pub duration: Duration,
    pub seed: u64,
    /// Where finding inputs go; none: kept in memory only.
    pub crash_dir: Option<PathBuf>,
    /// The shared corpus; none or missing: built-in seeds only.
    pub corpus: Option<PathBuf>,
    /// Print each new finding as it is found.
    pub verbose: bool,
}

/// One kind of finding, with how often it came and where its inputs are.
#[derive(Debug)]
pub struct UniqueFinding {
    pub signature: String,
    pub kind: &'static str,
    pub count: u64,
    /// The first finding, with its stack for a panic.
    pub first: Finding,
    pub first_input: Vec<u8>,
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub execs: u64,
    pub elapsed: Duration,
    pub seeds: usize,
    pub corpus_files: usize,
    pub panics: u64,
    pub render_errs: u64,
    /// By signature.
    pub findings: BTreeMap<String, UniqueFinding>,
    /// Inputs slower than [`SLOW`]: (time, file or size).
    pub slow: Vec<(Duration, String)>,
}

impl Summary {
    pub fn execs_per_sec(&self) -> f64 {
        self.execs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn report(&self) -> String {
        let mut s = format!(
            "{} execs in {:.1} s ({:.0} execs/s); seeds: {} ({} from the corpus); \
             panics: {}, render errors: {}, distinct findings: {}\n",
            self.execs,
            self.elapsed.as_secs_f64(),
            self.execs_per_sec(),
            self.seeds,
            self.corpus_files,
            self.panics,
            self.render_errs,
            self.findings.len()
        );
        for f in self.findings.values() {
            s.push_str(&format!("- {} ×{}: {}\n", f.kind, f.count, f.signature));
            for p in &f.files {
                s.push_str(&format!(
                    "    reproduce: cargo run -p helpdeskd --example fuzz -- --replay {}\n",
                    p.display()
                ));
            }
        }
        for (t, what) in &self.slow {
            s.push_str(&format!("- slow input: {:.1} s, {what}\n", t.as_secs_f64()));
        }
        s
    }
}

/// `../shared/corpus` beside the repository, if it is there.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    dir.is_dir().then_some(dir)
}

/// Runs the seeds, then mutations until `cfg.duration` has passed.
pub fn campaign(cfg: &Campaign) -> Summary {
    let start = Instant::now();
    let mut summary = Summary::default();
    let mut seeds = builtin_seeds();
    let corpus = cfg
        .corpus
        .as_deref()
        .filter(|d| d.is_dir())
        .map(|d| corpus_seeds(d, 8 << 20))
        .unwrap_or_default();
    summary.corpus_files = corpus.len();
    if cfg.verbose {
        match &cfg.corpus {
            Some(d) if d.is_dir() => println!("corpus: {} files in {}", corpus.len(), d.display()),
            Some(d) => println!("corpus: {} not found, built-in seeds only", d.display()),
            None => println!("corpus: none, built-in seeds only"),
        }
    }
    // Every seed once as it is.
    let mut first_pass: Vec<(String, Vec<u8>)> = seeds
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("built-in seed {i}"), s.clone()))
        .collect();
    for (path, bytes) in corpus {
        if bytes.len() as u64 <= MAX_MUTATED_SEED {
            seeds.push(bytes.clone());
        }
        first_pass.push((path.display().to_string(), bytes));
    }
    summary.seeds = seeds.len();
    for (name, input) in &first_pass {
        one(cfg, &mut summary, input, Some(name));
    }
    let mut mutator = Mutator::new(cfg.seed, seeds);
    while start.elapsed() < cfg.duration {
        // The clock is read once per 64 inputs.
        for _ in 0..64 {
            let input = mutator.next_input();
            one(cfg, &mut summary, &input, None);
        }
    }
    summary.elapsed = start.elapsed();
    summary
}

fn one(cfg: &Campaign, summary: &mut Summary, input: &[u8], name: Option<&str>) {
    let t = Instant::now();
    let result = run_one(input);
    let took = t.elapsed();
    summary.execs += 1;
    if took > SLOW {
        let what = match name {
            Some(n) => n.to_string(),
            None => match save(cfg, "slow", input) {
                Some(p) => p.display().to_string(),
                None => format!("{} bytes", input.len()),
            },
        };
        summary.slow.push((took, what));
    }
    let Err(finding) = result else { return };
    match finding {
        Finding::Panic { .. } => summary.panics += 1,
        Finding::RenderErr { .. } => summary.render_errs += 1,
    }
    let signature = finding.signature();
    let kind = finding.kind();
    let entry = summary.findings.entry(signature.clone());
    let new = matches!(entry, std::collections::btree_map::Entry::Vacant(_));
    let found = entry.or_insert_with(|| UniqueFinding {
        signature: signature.clone(),
        kind,
        count: 0,
        first: finding,
        first_input: input.to_vec(),
        files: Vec::new(),
    });
    found.count += 1;
    if found.files.len() < FILES_PER_SIGNATURE
        && let Some(p) = save(cfg, kind, input)
    {
        if cfg.verbose {
            println!("{kind}: input written to {}", p.display());
        }
        found.files.push(p);
    }
    if new && cfg.verbose {
        let from = name.map(|n| format!(" (from {n})")).unwrap_or_default();
        println!("NEW {kind}{from}: {}", found.first);
    }
}

/// Writes `input` as `KIND-HASH.eml` in the crash folder.
fn save(cfg: &Campaign, kind: &str, input: &[u8]) -> Option<PathBuf> {
    let dir = cfg.crash_dir.as_ref()?;
    std::fs::create_dir_all(dir).ok()?;
    let hash = &crate::ingest::parse::sha256_hex(input)[..16];
    let path = dir.join(format!("{kind}-{hash}.eml"));
    std::fs::write(&path, input).ok()?;
    Some(path)
}

/// Runs saved inputs once each; the findings with their file.
pub fn replay(paths: &[PathBuf]) -> Vec<(PathBuf, Result<(), Finding>)> {
    paths
        .iter()
        .map(|p| {
            let result = match std::fs::read(p) {
                Ok(bytes) => run_one(&bytes),
                Err(e) => Err(Finding::Panic {
                    message: format!("cannot read the input: {e}"),
                    location: p.display().to_string(),
                    backtrace: None,
                }),
            };
            (p.clone(), result)
        })
        .collect()
}
