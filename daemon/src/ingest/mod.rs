//! The ingest pipeline: parse → classify → thread → apply, shared by the IMAP
//! pollers and `helpdeskd import`.
//!
//! Parsing runs on the caller's side (on blocking threads), while a single
//! writer task owns the database writes: batches from every mailbox are
//! committed one at a time, so SQLite never sees competing writers, and a
//! poller parses its next batch while the writer commits the previous one.

pub mod apply;
pub mod parse;
mod repairs;
mod robot;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Notify, mpsc, oneshot};
use tracing::{error, warn};

use crate::clock::Clock;
use crate::domain::conversation::Settings;
use crate::error::{Error, Result};
use crate::store::Store;
pub use apply::{Incoming, Outcome, Oversize, Watermark};

struct Job {
    batch: Vec<Incoming>,
    watermark: Option<Watermark>,
    done: oneshot::Sender<(Result<Vec<Outcome>>, Instant)>,
}

/// A handle to the writer task; cheap to clone, one per poller.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

/// The answer to a submitted batch, awaited after the next batch is under way.
pub struct Pending(oneshot::Receiver<(Result<Vec<Outcome>>, Instant)>);

impl Pending {
    pub async fn outcomes(self) -> Result<Vec<Outcome>> {
        Ok(self.committed().await?.0)
    }

    /// The outcomes and when the writer finished the batch (its commit).
    pub async fn committed(self) -> Result<(Vec<Outcome>, Instant)> {
        let (result, at) = self.0.await.map_err(|_| Error::WriterGone)?;
        Ok((result?, at))
    }
}

impl Writer {
    /// Starts the writer task. `outbox_wake` is notified after every commit
    /// that queued outbound mail.
    pub fn spawn(
        store: Store,
        settings: Arc<Settings>,
        clock: Arc<dyn Clock>,
        outbox_wake: Arc<Notify>,
    ) -> Writer {
        let (tx, mut rx) = mpsc::channel::<Job>(4);
        tokio::spawn(async move {
            let checkpoint = store.spawn_checkpointer().await.unwrap_or_else(|e| {
                warn!(error = %e, "no checkpoint connection; commits make their own checkpoints");
                None
            });
            // Dedup keys of batches that failed whole: when they come again
            // (the poller fetches a failed batch again), they go mail by mail.
            let mut suspects: HashSet<String> = HashSet::new();
            while let Some(job) = rx.recv().await {
                // A lone mail goes this way too: failing alone twice
                // quarantines it, so it cannot come back forever.
                let one_by_one = job
                    .batch
                    .iter()
                    .any(|m| suspects.contains(&m.parsed.dedup_key));
                let keys: Vec<String> = if one_by_one {
                    Vec::new()
                } else {
                    job.batch
                        .iter()
                        .map(|m| m.parsed.dedup_key.clone())
                        .collect()
                };
                let result = if one_by_one {
                    warn!(
                        mails = job.batch.len(),
                        "a batch that failed whole is stored mail by mail"
                    );
                    let r = apply_one_by_one(&store, &settings, job.batch, job.watermark, &*clock)
                        .await;
                    if r.is_ok() {
                        suspects.clear();
                    }
                    r
                } else {
                    let r = guarded(apply::apply_batch(
                        &store,
                        &settings,
                        job.batch,
                        job.watermark,
                        clock.now(),
                    ))
                    .await;
                    if r.is_err() {
                        if suspects.len() > MAX_SUSPECTS {
                            suspects.clear();
                        }
                        suspects.extend(keys);
                    }
                    r
                };
                match &result {
                    Ok(outcomes) => {
                        if let Some(c) = &checkpoint {
                            c.notify_one();
                        }
                        if outcomes
                            .iter()
                            .any(|o| matches!(o, Outcome::Stored { mails, .. } if *mails > 0))
                        {
                            outbox_wake.notify_one();
                        }
                    }
                    Err(e) => error!(error = %e, "batch not stored; it will be fetched again"),
                }
                let _ = job.done.send((result, Instant::now()));
            }
        });
        Writer { tx }
    }

    pub async fn submit(
        &self,
        batch: Vec<Incoming>,
        watermark: Option<Watermark>,
    ) -> Result<Pending> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Job {
                batch,
                watermark,
                done,
            })
            .await
            .map_err(|_| Error::WriterGone)?;
        Ok(Pending(rx))
    }
}

/// Dedup keys remembered from failed batches, at most.
const MAX_SUSPECTS: usize = 100_000;

/// Runs a batch's transaction with panics caught: a panic outside the
/// per-mail decisions (which catch their own) fails the batch like a
/// database error, and the writer lives on.
async fn guarded(
    work: impl std::future::Future<Output = Result<Vec<Outcome>>>,
) -> Result<Vec<Outcome>> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(r) => r,
        Err(panic) => Err(Error::Invalid(format!(
            "storing the batch panicked: {}",
            crate::panic_message(&*panic)
        ))),
    }
}

/// Stores a batch that failed whole, one transaction per mail. A mail that
/// fails alone, twice, is quarantined with the database's reason; if even
/// that fails, the database itself is in trouble and the batch is left to
/// be fetched again (what was stored is then a duplicate, counted as such).
async fn apply_one_by_one(
    store: &Store,
    settings: &Settings,
    batch: Vec<Incoming>,
    watermark: Option<Watermark>,
    clock: &dyn Clock,
) -> Result<Vec<Outcome>> {
    let last = batch.len().saturating_sub(1);
    let mut outcomes = Vec::with_capacity(batch.len());
    for (i, m) in batch.into_iter().enumerate() {
        let w = if i == last { watermark.clone() } else { None };
        let mut failure = String::new();
        for _ in 0..2 {
            // A copy of one mail, so it can still be quarantined after a
            // failed attempt consumed it.
            let copy = Incoming {
                mailbox: m.mailbox.clone(),
                uid: m.uid,
                raw: m.raw.clone(),
                parsed: m.parsed.clone(),
                oversize: m.oversize,
            };
            match guarded(apply::apply_batch(
                store,
                settings,
                vec![copy],
                w.clone(),
                clock.now(),
            ))
            .await
            {
                Ok(o) => {
                    outcomes.extend(o);
                    failure.clear();
                    break;
                }
                Err(e) => failure = e.to_string(),
            }
        }
        if !failure.is_empty() {
            error!(
                mailbox = m.mailbox,
                uid = m.uid,
                dedup_key = m.parsed.dedup_key,
                reason = failure,
                "mail quarantined: it cannot be stored"
            );
            let reason = format!("cannot be stored: {failure}");
            outcomes.push(apply::quarantine_one(store, m, reason, w.as_ref(), clock.now()).await?);
        }
    }
    Ok(outcomes)
}

/// Parses raw mails on blocking threads, one share of the batch per core;
/// the result keeps the batch's order.
pub async fn parse_batch(
    mailbox: String,
    raws: Vec<(Option<u32>, Vec<u8>)>,
    max_bytes: usize,
) -> Result<Vec<Incoming>> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let share = raws.len().div_ceil(cores).max(1);
    let mut rest = raws.into_iter();
    let mut tasks = Vec::with_capacity(cores);
    loop {
        let part: Vec<(Option<u32>, Vec<u8>)> = rest.by_ref().take(share).collect();
        if part.is_empty() {
            break;
        }
        let mailbox = mailbox.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            part.into_iter()
                .map(|(uid, raw)| Incoming {
                    mailbox: mailbox.clone(),
                    uid,
                    parsed: parse::parse_guarded(&raw, max_bytes),
                    raw,
                    oversize: None,
                })
                .collect::<Vec<_>>()
        }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.extend(
            task.await
                .map_err(|e| Error::Invalid(format!("parser task failed: {e}")))?,
        );
    }
    Ok(out)
}

/// Counts of what a run ingested.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub stored: u64,
    pub new_tickets: u64,
    pub acknowledged: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub bytes: u64,
}

impl Stats {
    pub fn add(&mut self, outcomes: &[Outcome]) {
        for o in outcomes {
            match o {
                Outcome::Stored {
                    new_ticket,
                    acknowledged,
                    ..
                } => {
                    self.stored += 1;
                    self.new_tickets += u64::from(*new_ticket);
                    self.acknowledged += u64::from(*acknowledged);
                }
                Outcome::Duplicate => self.duplicates += 1,
                Outcome::Quarantined(_) => self.quarantined += 1,
            }
        }
    }

    pub fn merge(&mut self, o: Stats) {
        self.stored += o.stored;
        self.new_tickets += o.new_tickets;
        self.acknowledged += o.acknowledged;
        self.duplicates += o.duplicates;
        self.quarantined += o.quarantined;
        self.bytes += o.bytes;
    }

    pub fn mails(&self) -> u64 {
        self.stored + self.duplicates + self.quarantined
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ConnectionTrait;

    fn incoming(uid: u32, subject: &str) -> Incoming {
        let raw = format!(
            "From: Jo <jo{uid}@cust.test>\r\nTo: support@example.test\r\nSubject: {subject}\r\n\
Message-ID: <m{uid}@cust.test>\r\n\r\nhello\r\n"
        )
        .into_bytes();
        Incoming {
            mailbox: "support".into(),
            uid: Some(uid),
            parsed: parse::parse(&raw, 1 << 20),
            raw,
            oversize: None,
        }
    }

    /// A mail the database refuses (here a trigger, as PostgreSQL refuses
    /// a NUL in text) fails its batch once; when the batch comes again it is
    /// stored mail by mail, the refused mail is quarantined with the
    /// database's reason, and the others become tickets.
    #[tokio::test]
    async fn a_batch_refused_whole_is_stored_mail_by_mail_the_next_time() {
        let store = Store::connect("sqlite::memory:", 1).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
            .conn()
            .execute_unprepared(
                "CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.subject = 'poison' \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            )
            .await
            .expect("trigger");
        let writer = Writer::spawn(
            store.clone(),
            Arc::new(crate::fuzzing::settings().clone()),
            Arc::new(crate::clock::SystemClock),
            Arc::new(Notify::new()),
        );
        let batch = || {
            vec![
                incoming(1, "one"),
                incoming(2, "poison"),
                incoming(3, "three"),
            ]
        };

        let first = writer.submit(batch(), None).await.expect("submitted");
        assert!(
            first.outcomes().await.is_err(),
            "the database refuses the batch"
        );

        let again = writer.submit(batch(), None).await.expect("submitted");
        let outcomes = again.outcomes().await.expect("stored mail by mail");
        assert!(
            matches!(outcomes[0], Outcome::Stored { .. }),
            "{outcomes:?}"
        );
        assert!(
            matches!(&outcomes[1], Outcome::Quarantined(r) if r.contains("refused by the test")),
            "{outcomes:?}"
        );
        assert!(
            matches!(outcomes[2], Outcome::Stored { .. }),
            "{outcomes:?}"
        );
        let held = store.quarantined().await.expect("quarantine");
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].dedup_key, "mid:m2@cust.test");

        // The writer lives on: the next batch is stored whole.
        let next = writer
            .submit(vec![incoming(4, "four")], None)
            .await
            .expect("submitted");
        let outcomes = next.outcomes().await.expect("stored");
        assert!(
            matches!(outcomes[0], Outcome::Stored { .. }),
            "{outcomes:?}"
        );
    }
}
