//! Service reporting (ISO/IEC 20000): the figures of a period — SLA
//! compliance, ticket volumes, the backlog by age, supplier performance —
//! for the command line (`helpdeskd report`) and as the scheduled HTML mail
//! to `[report] recipients`.
//!
//! `figures` reads the database; `render` turns figures into text, CSV,
//! JSON or HTML with no I/O. This module queues the mail; the job scheduler
//! decides when, by calling [`queue_scheduled`] on the `[report] schedule`.

pub mod figures;
pub mod processes;
pub mod render;
pub mod satisfaction;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tracing::info;

use crate::config::Config;
use crate::domain::ack::Outgoing;
use crate::domain::render::render as render_mail;
use crate::error::Result;
use crate::store::Store;
use crate::store::entity::outbox;

pub use figures::{Figures, figures};
pub use render::Kind;

/// Computes the figures of the last `[report] period_days` days up to `now`
/// and queues the HTML report to each of `[report] recipients` (one outbox
/// row per recipient; the outbox sender delivers them). Returns how many
/// mails were queued: none without recipients.
///
/// The report of a schedule `slot` is queued once: its Message-IDs name
/// the slot, and a slot whose report is queued already (its daemon died
/// before it recorded the run, and another took the slot over) queues
/// nothing. Without a slot (`report send`) every call queues a report.
pub async fn queue_scheduled(
    store: &Store,
    config: &Config,
    slot: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<usize> {
    let report = &config.levels.report;
    if report.recipients.is_empty() {
        return Ok(0);
    }
    let desk = &config.desk;
    let stem = match slot {
        Some(s) => format!("report.slot{}", s.timestamp()),
        None => format!("report.{}", now.timestamp_micros()),
    };
    if slot.is_some() {
        let queued = outbox::Entity::find()
            .filter(outbox::Column::MessageId.eq(format!("{stem}.0@{}", desk.id_domain())))
            .count(store.conn())
            .await?;
        if queued > 0 {
            info!(slot = %stem, "the slot's report is queued already");
            return Ok(0);
        }
    }
    let from = now - Duration::days(i64::from(report.period_days));
    let figs = figures(
        store,
        &config.levels,
        &config.changes.catalog,
        from,
        now,
        now,
    )
    .await?;
    let html = render::html(&figs, &desk.name, from, now);
    let text = render::text(&figs, &desk.name);
    let subject = format!(
        "[{}] Service report {}",
        desk.tag,
        render::period(from, now)
    );
    let mut rows = Vec::with_capacity(report.recipients.len());
    for (i, to) in report.recipients.iter().enumerate() {
        let out = Outgoing {
            message_id: format!("{stem}.{i}@{}", desk.id_domain()),
            from: desk.address.clone(),
            reply_to: None,
            to: vec![to.clone()],
            subject: subject.clone(),
            in_reply_to: None,
            references: Vec::new(),
            auto_submitted: Some("auto-generated"),
            body: text.clone(),
            html: Some(html.clone()),
            attachments: Vec::new(),
            thread: None,
        };
        let raw = render_mail(&out, now)?;
        rows.push(crate::store::rows::outbox_row(
            None, "report", &out, raw, now,
        ));
    }
    let queued = rows.len();
    outbox::Entity::insert_many(rows).exec(store.conn()).await?;
    info!(
        recipients = queued,
        from = %from,
        to = %now,
        "service report queued"
    );
    Ok(queued)
}
