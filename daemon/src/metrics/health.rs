//! Whether this daemon is doing its job, for `/readyz`: the database
//! answers, every mailbox's poller is connected (or briefly reconnecting),
//! and the outbox is drained. The pollers and the sender report their state
//! here; [`readiness`] decides from plain facts.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A poller that was connected may be away this long (its backoff grows to
/// 60 s) before the daemon stops being ready.
pub const MAILBOX_OUTAGE: Duration = Duration::from_secs(120);
/// An outbound mail due this long and still not sent means the outbox is stuck.
pub const OUTBOX_STUCK: Duration = Duration::from_secs(15 * 60);
/// The sender reports at every flush, and every few seconds while mails
/// are in flight; silent this long past its flush interval, it is stuck.
pub const SENDER_SILENT: Duration = Duration::from_secs(120);

/// A mailbox's poller, as this daemon sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poller {
    /// Started, not connected yet.
    Starting,
    /// Another daemon polls the mailbox; this one waits to take it over.
    Standby,
    Connected,
    /// The last session ended in `error`; retried with backoff. `since`:
    /// the first failure after the last connection.
    Failing {
        since: Instant,
        error: String,
        /// The server refused the login or the folder: an admin must act.
        refused: bool,
        /// Whether it was connected before (else it never got in).
        was_connected: bool,
    },
}

/// The states reported by the tasks of `helpdeskd run`.
#[derive(Debug, Default)]
pub struct Health {
    pollers: Mutex<BTreeMap<String, Poller>>,
    sender: Mutex<Option<Instant>>,
}

impl Health {
    pub fn poller(&self, mailbox: &str, state: Poller) {
        if let Ok(mut p) = self.pollers.lock() {
            p.insert(mailbox.to_string(), state);
        }
    }

    /// A poller's session failed: keeps the start of a longer failure.
    pub fn poller_failed(&self, mailbox: &str, error: String, refused: bool, now: Instant) {
        if let Ok(mut p) = self.pollers.lock() {
            let next = match p.get(mailbox) {
                Some(Poller::Failing {
                    since,
                    was_connected,
                    ..
                }) => Poller::Failing {
                    since: *since,
                    error,
                    refused,
                    was_connected: *was_connected,
                },
                before => Poller::Failing {
                    since: now,
                    error,
                    refused,
                    was_connected: before == Some(&Poller::Connected),
                },
            };
            p.insert(mailbox.to_string(), next);
        }
    }

    pub fn pollers(&self) -> BTreeMap<String, Poller> {
        self.pollers.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The outbox sender is alive (called at each flush and while sending).
    pub fn sender_beat(&self, now: Instant) {
        if let Ok(mut s) = self.sender.lock() {
            *s = Some(now);
        }
    }

    pub fn sender(&self) -> Option<Instant> {
        self.sender.lock().ok().and_then(|s| *s)
    }
}

/// What `/readyz` decides from.
#[derive(Debug, Clone)]
pub struct Facts {
    /// `SELECT 1`: the error when it failed.
    pub database: Result<(), String>,
    /// Every configured mailbox with its poller's state (`None`: no poller
    /// reported yet).
    pub pollers: Vec<(String, Option<Poller>)>,
    /// The sender's last report.
    pub sender_beat: Option<Instant>,
    pub flush_interval: Duration,
    /// How long the longest-due unsent mail has been due (`None`: none, or
    /// the database did not say).
    pub outbox_oldest_due: Option<Duration>,
}

/// Ready, or the checks that failed, a line each.
pub fn readiness(f: &Facts, now: Instant) -> Result<(), Vec<String>> {
    let mut failed = Vec::new();
    if let Err(e) = &f.database {
        failed.push(format!("database: {e}"));
    }
    for (name, state) in &f.pollers {
        let why = match state {
            None | Some(Poller::Starting) => Some("not connected yet".to_string()),
            Some(Poller::Connected | Poller::Standby) => None,
            Some(Poller::Failing {
                since,
                error,
                refused,
                was_connected,
            }) => {
                let away = now.saturating_duration_since(*since);
                if *refused {
                    Some(format!("refused: {error}"))
                } else if !was_connected {
                    Some(format!("cannot connect: {error}"))
                } else if away >= MAILBOX_OUTAGE {
                    Some(format!("failing for {}s: {error}", away.as_secs()))
                } else {
                    None
                }
            }
        };
        if let Some(why) = why {
            failed.push(format!("mailbox {name}: {why}"));
        }
    }
    match f.sender_beat {
        None => failed.push("outbox: the sender has not started".into()),
        Some(beat) => {
            let silent = now.saturating_duration_since(beat);
            if silent > f.flush_interval + SENDER_SILENT {
                failed.push(format!(
                    "outbox: the sender has not reported for {}s",
                    silent.as_secs()
                ));
            }
        }
    }
    if let Some(age) = f.outbox_oldest_due
        && age >= OUTBOX_STUCK
    {
        failed.push(format!(
            "outbox: a mail has been due for {}s without being sent",
            age.as_secs()
        ));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(now: Instant) -> Facts {
        Facts {
            database: Ok(()),
            pollers: vec![
                ("support".into(), Some(Poller::Connected)),
                ("changes".into(), Some(Poller::Standby)),
            ],
            sender_beat: Some(now),
            flush_interval: Duration::from_secs(5),
            outbox_oldest_due: Some(Duration::from_secs(3)),
        }
    }

    #[test]
    fn a_working_daemon_is_ready() {
        let now = Instant::now();
        assert_eq!(readiness(&facts(now), now), Ok(()));
    }

    #[test]
    fn each_failed_check_is_named() {
        let now = Instant::now();
        let mut f = facts(now);
        f.database = Err("connection refused".into());
        assert_eq!(
            readiness(&f, now),
            Err(vec!["database: connection refused".to_string()])
        );

        let mut f = facts(now);
        f.outbox_oldest_due = Some(OUTBOX_STUCK);
        assert_eq!(
            readiness(&f, now),
            Err(vec![
                "outbox: a mail has been due for 900s without being sent".to_string()
            ])
        );

        let mut f = facts(now);
        f.sender_beat = None;
        assert_eq!(
            readiness(&f, now),
            Err(vec!["outbox: the sender has not started".to_string()])
        );
    }

    #[test]
    fn a_silent_sender_counts_from_its_flush_interval() {
        let start = Instant::now();
        let f = facts(start);
        let later = start + Duration::from_secs(5) + SENDER_SILENT;
        assert_eq!(readiness(&f, later), Ok(()));
        let later = later + Duration::from_secs(1);
        assert_eq!(
            readiness(&f, later),
            Err(vec![
                "outbox: the sender has not reported for 126s".to_string()
            ])
        );
    }

    #[test]
    fn a_mailbox_that_never_got_in_fails_at_once_and_one_that_lost_its_connection_after_a_while() {
        let start = Instant::now();
        let h = Health::default();
        h.poller("support", Poller::Starting);
        h.poller_failed("support", "connection refused".into(), false, start);
        h.poller("changes", Poller::Connected);
        h.poller_failed("changes", "connection reset".into(), false, start);
        // A second failure keeps the start of the outage.
        h.poller_failed(
            "changes",
            "connection refused".into(),
            false,
            start + Duration::from_secs(60),
        );
        let mut f = facts(start);
        f.pollers = h.pollers().into_iter().map(|(n, s)| (n, Some(s))).collect();
        f.sender_beat = Some(start + MAILBOX_OUTAGE);

        let within = start + MAILBOX_OUTAGE - Duration::from_secs(1);
        assert_eq!(
            readiness(&f, within),
            Err(vec![
                "mailbox support: cannot connect: connection refused".to_string()
            ])
        );
        let past = start + MAILBOX_OUTAGE;
        assert_eq!(
            readiness(&f, past),
            Err(vec![
                "mailbox changes: failing for 120s: connection refused".to_string(),
                "mailbox support: cannot connect: connection refused".to_string(),
            ])
        );
    }

    #[test]
    fn a_refused_login_and_a_poller_not_yet_started_are_not_ready() {
        let now = Instant::now();
        let mut f = facts(now);
        f.pollers = vec![
            (
                "support".into(),
                Some(Poller::Failing {
                    since: now,
                    error: "login as support failed: NO".into(),
                    refused: true,
                    was_connected: true,
                }),
            ),
            ("changes".into(), None),
        ];
        assert_eq!(
            readiness(&f, now),
            Err(vec![
                "mailbox support: refused: login as support failed: NO".to_string(),
                "mailbox changes: not connected yet".to_string(),
            ])
        );
    }
}
