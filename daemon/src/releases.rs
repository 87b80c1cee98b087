//! The second half of a deploy. `/deploy` (in the ingest writer) puts a
//! release in `deploying` and raises the gate event `release.before_deploy`;
//! once the plugins have answered it, [`settle`] deploys the release (its
//! notes mailed, `release.deployed` raised) or records the veto (or the
//! gate's failure: a gate that cannot answer does not let a deploy through)
//! and mails the reasons to the release manager.
//!
//! Several daemons: the move out of `deploying` is a conditional update in
//! the transaction that queues the mails, so one daemon settles a release.

use chrono::{DateTime, Utc};
use plugin_api::hooks;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::Value;
use tracing::{info, warn};

use crate::domain::conversation::{Draft, Settings};
use crate::domain::release::{self, Info, State};
use crate::domain::threading::TicketRef;
use crate::domain::ticket::{TicketId, TicketNumber};
use crate::error::{Error, Result};
use crate::plugins::{self, GateOutcome};
use crate::store::Store;
use crate::store::entity::{event, message, outbox, release as release_row, ticket};
use crate::store::rows::insert_chunks;
use crate::tickets::{Contacts, Counter, Queue, events, queue_drafts};

/// Settles every release whose gate has answered; returns the mails queued.
/// A release that cannot be settled (its ticket unreadable, say) is logged
/// and tried again the next time; the others go on.
pub async fn settle(store: &Store, settings: &Settings, now: DateTime<Utc>) -> Result<usize> {
    let deploying = release_row::Entity::find()
        .filter(release_row::Column::State.eq(State::Deploying.as_str()))
        .all(store.conn())
        .await?;
    let mut mails = 0;
    for r in deploying {
        match settle_release(store, settings, &r, now).await {
            Ok(n) => mails += n,
            Err(e) => warn!(
                ticket_id = r.ticket_id,
                error = %e,
                "cannot settle this deploy; tried again later"
            ),
        }
    }
    Ok(mails)
}

/// Settles one deploying release if its gate has answered.
async fn settle_release(
    store: &Store,
    settings: &Settings,
    r: &release_row::Model,
    now: DateTime<Utc>,
) -> Result<usize> {
    let conn = store.conn();
    let Some(gate) = event::Entity::find()
        .filter(event::Column::TicketId.eq(r.ticket_id))
        .filter(event::Column::Hook.eq(hooks::RELEASE_BEFORE_DEPLOY))
        .order_by_desc(event::Column::Id)
        .one(conn)
        .await?
    else {
        return Err(Error::NotFound(format!(
            "the gate event of the deploying release {}",
            r.ticket_id
        )));
    };
    let (next, reasons) = match plugins::gate_outcome(conn, gate.id).await? {
        GateOutcome::Pending => return Ok(0),
        GateOutcome::Passed => (State::Deployed, Vec::new()),
        GateOutcome::Vetoed(v) => (
            State::Vetoed,
            v.into_iter()
                .map(|v| format!("{}: {}", v.plugin, v.reason))
                .collect(),
        ),
        GateOutcome::Failed(e) => (
            State::Vetoed,
            vec![format!("the gate failed, so nothing was deployed: {e}")],
        ),
    };
    settle_one(store, settings, r, &gate, next, &reasons, now).await
}

async fn settle_one(
    store: &Store,
    settings: &Settings,
    r: &release_row::Model,
    gate: &event::Model,
    next: State,
    reasons: &[String],
    now: DateTime<Utc>,
) -> Result<usize> {
    let txn = store.begin().await?;
    let deployed_at = (next == State::Deployed).then_some(now);
    let moved = release_row::Entity::update_many()
        .col_expr(release_row::Column::State, Expr::value(next.as_str()))
        .col_expr(release_row::Column::Vetoes, Expr::value(reasons.join("\n")))
        .col_expr(release_row::Column::DeployedAt, Expr::value(deployed_at))
        .col_expr(release_row::Column::UpdatedAt, Expr::value(now))
        .filter(release_row::Column::TicketId.eq(r.ticket_id))
        .filter(release_row::Column::State.eq(State::Deploying.as_str()))
        .exec(&txn)
        .await?;
    if moved.rows_affected == 0 {
        // Another daemon settled it.
        return Ok(0);
    }
    let t = ticket::Entity::find_by_id(r.ticket_id)
        .one(&txn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("release ticket {}", r.ticket_id)))?;
    let number: TicketNumber = t.number.parse().map_err(|_| {
        Error::Invalid(format!("release ticket {} has number {:?}", t.id, t.number))
    })?;
    let info = Info {
        number,
        subject: t.subject.clone(),
        assignee: t.assignee.clone(),
    };
    let payload: Value = serde_json::from_str(&gate.payload).unwrap_or(Value::Null);
    let data = &payload["release"];
    let changes = release::changes_of(data);
    let mut record = crate::tickets::release_record(r)?;
    record.state = next;
    record.deployed_at = deployed_at;
    let drafts: Vec<Draft> = match next {
        State::Deployed => release::release_notes(
            settings,
            &info,
            &record,
            &changes,
            &settings.release_subscribers,
            now,
        )
        .into_iter()
        .collect(),
        _ => release::veto_notice(settings, &info, reasons)
            .into_iter()
            .collect(),
    };
    let emails: Vec<&str> = drafts
        .iter()
        .flat_map(|d| d.to.iter().map(|a| a.email.as_str()))
        .collect();
    let mut contacts = Contacts::load(&txn, emails).await?;
    let mut messages_seq = Counter::load(&txn, "message").await?;
    let (mut messages, mut outbox_rows): (Vec<message::ActiveModel>, Vec<outbox::ActiveModel>) =
        (Vec::new(), Vec::new());
    let queued = queue_drafts(
        settings,
        TicketRef {
            id: TicketId(t.id),
            number,
        },
        &drafts,
        &[],
        &format!("gate{}", gate.id),
        Queue {
            contacts: &mut contacts,
            messages_seq: &mut messages_seq,
            messages: &mut messages,
            outbox: &mut outbox_rows,
        },
        now,
    );
    contacts.save(&txn).await?;
    insert_chunks(&txn, messages, message::Entity::insert_many).await?;
    insert_chunks(&txn, outbox_rows, outbox::Entity::insert_many).await?;
    if next == State::Deployed {
        let customer = String::new();
        let pending = events::Pending {
            ticket_id: t.id,
            hook: hooks::RELEASE_DEPLOYED,
            payload: events::payload(
                hooks::RELEASE_DEPLOYED,
                events::ticket_of_model(&t, &customer),
                None,
                Vec::new(),
                [("release".to_string(), data.clone())]
                    .into_iter()
                    .collect(),
            ),
        };
        events::insert(&txn, vec![pending], now).await?;
    }
    messages_seq.save(&txn).await?;
    txn.commit().await?;
    match next {
        State::Deployed => info!(ticket = %number, changes = changes.len(), "release deployed"),
        _ => warn!(ticket = %number, reasons = reasons.join("; "), "release not deployed: vetoed"),
    }
    Ok(queued.ids.len())
}
