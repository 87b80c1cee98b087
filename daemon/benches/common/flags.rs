//! The command line of a bench binary: `--flag value` or `--flag=value`,
//! after what `cargo bench` adds of its own (`--bench`, and a name filter
//! it hands to every bench binary).

use anyhow::{Result, anyhow, bail};

pub struct Flags {
    bench: &'static str,
    args: std::vec::IntoIter<String>,
    /// Started by `cargo bench` (full size), not by `cargo test --benches`
    /// or by hand (a smoke run).
    pub from_cargo_bench: bool,
    /// The value of the last flag, given as `--flag=value`.
    inline: Option<(String, String)>,
}

impl Flags {
    /// The process's arguments, for the bench called `bench` in messages.
    pub fn from_env(bench: &'static str) -> Flags {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Flags {
            bench,
            from_cargo_bench: args.iter().any(|a| a == "--bench"),
            args: args.into_iter(),
            inline: None,
        }
    }

    /// The next flag; an error when the one before was given a value it
    /// did not take.
    pub fn next_flag(&mut self) -> Result<Option<String>> {
        if let Some((flag, value)) = self.inline.take() {
            bail!("{flag} takes no value, not {value:?}");
        }
        for arg in self.args.by_ref() {
            if arg == "--bench" {
                continue;
            }
            if !arg.starts_with('-') {
                eprintln!("{} bench: ignoring argument {arg:?}", self.bench);
                continue;
            }
            return Ok(Some(match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    self.inline = Some((flag.to_string(), value.to_string()));
                    flag.to_string()
                }
                _ => arg,
            }));
        }
        Ok(None)
    }

    /// The value of `flag`, the flag `next_flag` returned last.
    pub fn value(&mut self, flag: &str) -> Result<String> {
        match self.inline.take() {
            Some((_, value)) => Ok(value),
            None => self
                .args
                .next()
                .ok_or_else(|| anyhow!("{flag} needs a value")),
        }
    }
}
