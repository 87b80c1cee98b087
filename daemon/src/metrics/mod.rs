//! What an admin sees from outside: the Prometheus metrics, `/healthz` and
//! `/readyz` (served by `helpdeskd run` when `[metrics] listen` is set, see
//! `http.rs`), and `helpdeskd status` (`status.rs`).
//!
//! The metric handles live in one process-wide [`Metrics`] (a `OnceLock`,
//! [`get`]): the events happen deep in tasks that share no handle (the
//! ingest writer's callers, the outbox sender, the SLA job, the plugin
//! runner), and the figures are the process's own, as its memory is. The
//! registry is written only here; the other modules call its methods.
//!
//! Counters count what this process did, after the commit where a database
//! write is involved (nothing counts as stored before its commit). Figures
//! about queues (outbox, failed plugin events) and the jobs' last success
//! are read from the database at each scrape, so they are right with
//! several daemons on one database and after a restart.

pub mod health;
pub mod http;
pub mod status;

use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::warn;

use crate::store::Store;
pub use health::Health;

type Labels = Vec<(&'static str, String)>;
type Counters = Family<Labels, Counter>;

/// How long a scrape waits for the database's figures.
const SCRAPE_DB_TIMEOUT: Duration = Duration::from_secs(5);

/// The metric handles of this process, and its health as `/readyz` reads it.
pub struct Metrics {
    registry: Registry,
    fetched: Counters,
    stored: Counters,
    duplicates: Counters,
    quarantined: Counters,
    imap_connections: Counters,
    imap_errors: Counters,
    oauth2_refreshes: Counters,
    outbox_sent: Counter,
    outbox_deferred: Counter,
    outbox_failed: Counter,
    sla_warnings: Counter,
    sla_breaches: Counter,
    plugin_calls: Counters,
    plugin_timeouts: Counters,
    plugin_host_restarts: Counter,
    ingest_latency: Histogram,
    // Read from the database at each scrape.
    database_up: Gauge,
    outbox_pending: Gauge,
    outbox_oldest_age: Gauge<f64, AtomicU64>,
    outbox_failed_rows: Gauge,
    outbox_bounced_rows: Gauge,
    plugin_events_failed: Gauge,
    job_last_success: Family<Labels, Gauge>,
    // From this process's pollers.
    mailbox_connected: Family<Labels, Gauge>,
    pub health: Health,
}

/// The metrics of this process.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// What became of a committed batch's mails.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcomes {
    pub stored: u64,
    pub duplicates: u64,
    pub quarantined: u64,
}

/// How a token refresh of an `[[oauth2]]` account ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    Ok,
    /// The provider refused it (`invalid_grant`, revoked consent): an admin must act.
    Refused,
    /// The endpoint could not be reached or answered nonsense: tried again.
    Failed,
}

impl RefreshOutcome {
    fn as_str(self) -> &'static str {
        match self {
            RefreshOutcome::Ok => "ok",
            RefreshOutcome::Refused => "refused",
            RefreshOutcome::Failed => "failed",
        }
    }
}

/// Counts one token refresh of `account` (`helpdeskd_oauth2_token_refreshes_total`).
pub fn oauth2_token_refresh(account: &str, outcome: RefreshOutcome) {
    get()
        .oauth2_refreshes
        .get_or_create(&vec![
            ("account", account.to_string()),
            ("outcome", outcome.as_str().to_string()),
        ])
        .inc();
}

fn mailbox(name: &str) -> Labels {
    vec![("mailbox", name.to_string())]
}

fn plugin(name: &str) -> Labels {
    vec![("plugin", name.to_string())]
}

impl Metrics {
    fn new() -> Metrics {
        let mut r = Registry::with_prefix("helpdeskd");
        let m = Metrics {
            fetched: Counters::default(),
            stored: Counters::default(),
            duplicates: Counters::default(),
            quarantined: Counters::default(),
            imap_connections: Counters::default(),
            imap_errors: Counters::default(),
            oauth2_refreshes: Counters::default(),
            outbox_sent: Counter::default(),
            outbox_deferred: Counter::default(),
            outbox_failed: Counter::default(),
            sla_warnings: Counter::default(),
            sla_breaches: Counter::default(),
            plugin_calls: Counters::default(),
            plugin_timeouts: Counters::default(),
            plugin_host_restarts: Counter::default(),
            // 10 ms to about 5.5 minutes.
            ingest_latency: Histogram::new(exponential_buckets(0.01, 2.0, 16)),
            database_up: Gauge::default(),
            outbox_pending: Gauge::default(),
            outbox_oldest_age: Gauge::default(),
            outbox_failed_rows: Gauge::default(),
            outbox_bounced_rows: Gauge::default(),
            plugin_events_failed: Gauge::default(),
            job_last_success: Family::default(),
            mailbox_connected: Family::default(),
            health: Health::default(),
            registry: Registry::default(),
        };
        r.register(
            "mails_fetched",
            "Mails fetched from IMAP, per mailbox",
            m.fetched.clone(),
        );
        r.register(
            "mails_stored",
            "Mails stored as ticket messages (counted after the commit)",
            m.stored.clone(),
        );
        r.register(
            "mails_duplicates",
            "Mails already stored, seen again",
            m.duplicates.clone(),
        );
        r.register(
            "mails_quarantined",
            "Mails put in the quarantine with a reason",
            m.quarantined.clone(),
        );
        r.register(
            "imap_connections",
            "IMAP logins that succeeded",
            m.imap_connections.clone(),
        );
        r.register(
            "imap_errors",
            "IMAP sessions that ended in an error (lost connection, refused login or folder)",
            m.imap_errors.clone(),
        );
        r.register(
            "oauth2_token_refreshes",
            "OAuth2 token refreshes, per account and outcome",
            m.oauth2_refreshes.clone(),
        );
        r.register(
            "outbox_sent",
            "Mails the SMTP server accepted",
            m.outbox_sent.clone(),
        );
        r.register(
            "outbox_deferred",
            "Sends that failed for now and wait for a retry",
            m.outbox_deferred.clone(),
        );
        r.register(
            "outbox_failed",
            "Mails that failed for good (5xx or too many attempts)",
            m.outbox_failed.clone(),
        );
        r.register(
            "sla_warnings",
            "SLA warnings recorded",
            m.sla_warnings.clone(),
        );
        r.register(
            "sla_breaches",
            "SLA breaches recorded",
            m.sla_breaches.clone(),
        );
        r.register(
            "plugin_calls",
            "Plugin calls, per plugin and outcome (ok, error)",
            m.plugin_calls.clone(),
        );
        r.register(
            "plugin_timeouts",
            "Plugin calls that did not answer within plugins.timeout_secs",
            m.plugin_timeouts.clone(),
        );
        r.register(
            "plugin_host_restarts",
            "Times the plugin host was started again after it died or was killed",
            m.plugin_host_restarts.clone(),
        );
        r.register(
            "ingest_latency_seconds",
            "From a mail's fetch to the commit of its batch",
            m.ingest_latency.clone(),
        );
        r.register(
            "database_up",
            "1 when the database answered this scrape's queries",
            m.database_up.clone(),
        );
        r.register(
            "outbox_pending",
            "Outbound mails not yet sent (database, all daemons)",
            m.outbox_pending.clone(),
        );
        r.register(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest outbound mail not yet sent; 0 when none",
            m.outbox_oldest_age.clone(),
        );
        r.register(
            "outbox_failed_mails",
            "Outbound mails that failed for good (database)",
            m.outbox_failed_rows.clone(),
        );
        r.register(
            "outbox_bounced_mails",
            "Outbound mails a bounce marked bounced (database)",
            m.outbox_bounced_rows.clone(),
        );
        r.register(
            "plugin_events_failed",
            "Plugin events failed for good (database; see helpdeskd plugins failed)",
            m.plugin_events_failed.clone(),
        );
        r.register(
            "job_last_success_timestamp_seconds",
            "When each scheduled job last finished well (unix time, database)",
            m.job_last_success.clone(),
        );
        r.register(
            "mailbox_connected",
            "1 while this daemon's poller of the mailbox is connected",
            m.mailbox_connected.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// Makes a mailbox's series exist at zero before anything happens.
    pub fn mailbox_known(&self, name: &str) {
        let l = mailbox(name);
        for c in [
            &self.fetched,
            &self.stored,
            &self.duplicates,
            &self.quarantined,
            &self.imap_connections,
            &self.imap_errors,
        ] {
            drop(c.get_or_create(&l));
        }
        drop(self.mailbox_connected.get_or_create(&l));
    }

    pub fn fetched(&self, name: &str, mails: usize) {
        self.fetched
            .get_or_create(&mailbox(name))
            .inc_by(mails as u64);
    }

    /// A batch of `name` committed, `latency` after its mails were fetched.
    pub fn committed(&self, name: &str, outcomes: Outcomes, latency: Duration) {
        let l = mailbox(name);
        self.stored.get_or_create(&l).inc_by(outcomes.stored);
        self.duplicates
            .get_or_create(&l)
            .inc_by(outcomes.duplicates);
        self.quarantined
            .get_or_create(&l)
            .inc_by(outcomes.quarantined);
        let mails = outcomes.stored + outcomes.duplicates + outcomes.quarantined;
        for _ in 0..mails {
            self.ingest_latency.observe(latency.as_secs_f64());
        }
    }

    pub fn imap_connected(&self, name: &str) {
        self.imap_connections.get_or_create(&mailbox(name)).inc();
        self.mailbox_connected.get_or_create(&mailbox(name)).set(1);
    }

    pub fn imap_error(&self, name: &str) {
        self.imap_errors.get_or_create(&mailbox(name)).inc();
        self.mailbox_connected.get_or_create(&mailbox(name)).set(0);
    }

    pub fn imap_closed(&self, name: &str) {
        self.mailbox_connected.get_or_create(&mailbox(name)).set(0);
    }

    pub fn outbox_sent(&self) {
        self.outbox_sent.inc();
    }

    pub fn outbox_deferred(&self) {
        self.outbox_deferred.inc();
    }

    pub fn outbox_failed(&self) {
        self.outbox_failed.inc();
    }

    pub fn sla_alerts(&self, warnings: u64, breaches: u64) {
        self.sla_warnings.inc_by(warnings);
        self.sla_breaches.inc_by(breaches);
    }

    pub fn plugin_call(&self, name: &str, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.plugin_calls
            .get_or_create(&vec![
                ("plugin", name.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
    }

    pub fn plugin_timeout(&self, name: &str) {
        self.plugin_timeouts.get_or_create(&plugin(name)).inc();
    }

    pub fn plugin_host_restart(&self) {
        self.plugin_host_restarts.inc();
    }

    /// The text a scrape gets: the database's figures read now (`jobs`:
    /// the configured jobs), then every metric in the OpenMetrics text format.
    pub async fn scrape(&self, store: &Store, now: DateTime<Utc>, jobs: &[String]) -> String {
        let queues =
            tokio::time::timeout(SCRAPE_DB_TIMEOUT, status::queues(store, now, jobs)).await;
        match queues.unwrap_or_else(|_| {
            Err(crate::Error::Invalid(format!(
                "no answer within {}s",
                SCRAPE_DB_TIMEOUT.as_secs()
            )))
        }) {
            Ok(q) => {
                self.database_up.set(1);
                self.outbox_pending.set(q.outbox.pending as i64);
                self.outbox_oldest_age.set(
                    q.outbox
                        .oldest_pending_at
                        .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0),
                );
                self.outbox_failed_rows.set(q.outbox.failed as i64);
                self.outbox_bounced_rows.set(q.outbox.bounced as i64);
                self.plugin_events_failed.set(q.failed_events as i64);
                for (job, at) in q.job_successes {
                    self.job_last_success
                        .get_or_create(&vec![("job", job)])
                        .set(at.timestamp());
                }
            }
            Err(e) => {
                warn!(error = %e, "metrics: the database did not answer");
                self.database_up.set(0);
            }
        }
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            warn!(error = %e, "metrics: encoding failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry of its own: the process-wide one is shared by every test.
    #[test]
    fn token_requests_are_counted_by_account_and_outcome() {
        crate::oauth2::record_refresh(
            "acct-counted",
            crate::oauth2::Outcome::Refused,
            "invalid_grant",
        );
        let mut out = String::new();
        encode(&mut out, &get().registry).expect("encodes");
        assert!(
            out.contains(
                "helpdeskd_oauth2_token_refreshes_total{account=\"acct-counted\",outcome=\"refused\"} 1"
            ),
            "{out}"
        );
    }

    #[test]
    fn counters_and_the_histogram_come_out_with_the_prefix_and_labels() {
        let m = Metrics::new();
        m.mailbox_known("support");
        m.fetched("support", 6);
        m.committed(
            "support",
            Outcomes {
                stored: 4,
                duplicates: 1,
                quarantined: 1,
            },
            Duration::from_millis(30),
        );
        m.plugin_call("router", false);
        let mut out = String::new();
        encode(&mut out, &m.registry).expect("encodes");
        for line in [
            "helpdeskd_mails_fetched_total{mailbox=\"support\"} 6",
            "helpdeskd_mails_stored_total{mailbox=\"support\"} 4",
            "helpdeskd_mails_duplicates_total{mailbox=\"support\"} 1",
            "helpdeskd_mails_quarantined_total{mailbox=\"support\"} 1",
            "helpdeskd_imap_errors_total{mailbox=\"support\"} 0",
            "helpdeskd_ingest_latency_seconds_count 6",
            "helpdeskd_ingest_latency_seconds_bucket{le=\"0.04\"} 6",
            "helpdeskd_ingest_latency_seconds_bucket{le=\"0.02\"} 0",
            "helpdeskd_plugin_calls_total{plugin=\"router\",outcome=\"error\"} 1",
            "helpdeskd_outbox_sent_total 0",
        ] {
            assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
        }
    }
}
