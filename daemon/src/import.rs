//! `helpdeskd import`: feeds an mbox file or a Maildir through the same
//! pipeline as the pollers, for moving an existing desk's history in.
//! Re-running an import stores nothing twice (deduplication).

use std::path::{Path, PathBuf};

use crate::config::IngestConfig;
use crate::error::{Error, Result};
use crate::ingest::{self, Stats, Writer};

/// Splits an mbox (mboxrd or mboxo) into messages: a line starting with
/// `From ` after a blank line (or at the start) begins a message; `>From `
/// quoting is undone.
pub fn split_mbox(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut prev_blank = true;
    for line in data.split_inclusive(|&b| b == b'\n') {
        if prev_blank && line.starts_with(b"From ") {
            if let Some(m) = current.take() {
                out.push(trim_separator(m));
            }
            current = Some(Vec::new());
            prev_blank = false;
            continue;
        }
        prev_blank = line == b"\n" || line == b"\r\n";
        let m = current.get_or_insert_with(Vec::new);
        let unquoted = line.strip_prefix(b">").filter(|rest| {
            let stripped = rest
                .iter()
                .skip_while(|&&b| b == b'>')
                .copied()
                .collect::<Vec<u8>>();
            stripped.starts_with(b"From ")
        });
        m.extend_from_slice(unquoted.unwrap_or(line));
    }
    if let Some(m) = current {
        out.push(trim_separator(m));
    }
    out.retain(|m| !m.iter().all(u8::is_ascii_whitespace));
    out
}

/// Drops the blank line that separates mbox messages.
fn trim_separator(mut m: Vec<u8>) -> Vec<u8> {
    if m.ends_with(b"\r\n\r\n") {
        m.truncate(m.len() - 2);
    } else if m.ends_with(b"\n\n") {
        m.truncate(m.len() - 1);
    }
    m
}

/// The message files of a Maildir (`cur/` and `new/`), in name order.
pub fn maildir_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for sub in ["cur", "new"] {
        let d = dir.join(sub);
        if !d.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
            let entry = entry.map_err(|e| Error::io(&d, e))?;
            if entry
                .file_type()
                .map_err(|e| Error::io(entry.path(), e))?
                .is_file()
            {
                files.push(entry.path());
            }
        }
    }
    if files.is_empty() && !dir.join("cur").is_dir() && !dir.join("new").is_dir() {
        return Err(Error::Invalid(format!(
            "{}: not a Maildir (no cur/ or new/ folder)",
            dir.display()
        )));
    }
    files.sort();
    Ok(files)
}

pub enum Source {
    Mbox(PathBuf),
    Maildir(PathBuf),
}

/// Imports every message of `source`, in batches, through `writer`.
pub async fn import(source: &Source, writer: &Writer, ingest: &IngestConfig) -> Result<Stats> {
    let raws: Box<dyn Iterator<Item = Result<Vec<u8>>>> = match source {
        Source::Mbox(path) => {
            let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            Box::new(split_mbox(&data).into_iter().map(Ok))
        }
        Source::Maildir(dir) => Box::new(
            maildir_files(dir)?
                .into_iter()
                .map(|p| std::fs::read(&p).map_err(|e| Error::io(&p, e))),
        ),
    };
    let mut stats = Stats::default();
    let mut batch: Vec<(Option<u32>, Vec<u8>)> = Vec::new();
    let mut pending = None;
    let mut raws = raws.peekable();
    while let Some(raw) = raws.next() {
        let raw = raw?;
        stats.bytes += raw.len() as u64;
        batch.push((None, raw));
        if batch.len() >= ingest.batch_size || raws.peek().is_none() {
            let parsed = ingest::parse_batch(
                "import".into(),
                std::mem::take(&mut batch),
                ingest.max_message_bytes,
            )
            .await?;
            let next = writer.submit(parsed, None).await?;
            if let Some(p) = pending.replace(next) {
                stats.add(&ingest::Pending::outcomes(p).await?);
            }
        }
    }
    if let Some(p) = pending {
        stats.add(&p.outcomes().await?);
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_splits_and_unquotes() {
        let mbox = b"From a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\n>From the start\nbody\n\nFrom c@d Mon Jan  1 00:00:00 2024\nSubject: two\n\nbody\nFrom here not a separator\n";
        let msgs = split_mbox(mbox);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0], b"Subject: one\n\nFrom the start\nbody\n".to_vec());
        assert_eq!(
            msgs[1],
            b"Subject: two\n\nbody\nFrom here not a separator\n".to_vec()
        );
    }
}
