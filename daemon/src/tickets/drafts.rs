//! Desk mails into the outbox: one copy per recipient, each with its own
//! reply token, rendered once, as a message on the ticket and an outbox row.

use chrono::{DateTime, Utc};

use super::{Contacts, Counter};
use crate::domain::conversation::{self, DraftKind, Settings};
use crate::domain::render::render;
use crate::domain::threading::TicketRef;
use crate::domain::ticket::Visibility;
use crate::domain::token::Token;
use crate::store::entity::{message, outbox};
use crate::store::rows::{Shown, outbound_row, outbox_row};
use tracing::warn;

/// The desk mails one mail (or job) queued, and the recipients it skipped.
#[derive(Default)]
pub(crate) struct Queued {
    /// Each copy's Message-ID and kind.
    pub ids: Vec<(String, DraftKind)>,
    /// Why a recipient got no copy, one line each, for the message's warnings.
    pub skipped: Vec<String>,
}

/// Where queued mails go: their recipients' contacts and message ids from
/// the transaction's counters, their rows into the transaction's lists.
pub(crate) struct Queue<'a> {
    pub contacts: &'a mut Contacts,
    pub messages_seq: &'a mut Counter,
    pub messages: &'a mut Vec<message::ActiveModel>,
    pub outbox: &'a mut Vec<outbox::ActiveModel>,
}

/// Gives every recipient of `drafts` a copy of its own, with its own reply
/// token, renders it, and queues it: a message row on the ticket and an
/// outbox row. A recipient the desk cannot write to (a domain literal, an
/// address lettre refuses) is skipped with the reason, never the batch;
/// a draft to more than `max_recipients` goes to the first of them.
pub(crate) fn queue_drafts(
    settings: &Settings,
    t: TicketRef,
    drafts: &[conversation::Draft],
    attachments: &[crate::domain::ack::OutAttachment],
    unique: &str,
    into: Queue<'_>,
    now: DateTime<Utc>,
) -> Queued {
    let Queue {
        contacts,
        messages_seq,
        messages,
        outbox: outbox_rows,
    } = into;
    let mut queued = Queued::default();
    for (d, draft) in drafts.iter().enumerate() {
        if draft.to.len() > settings.max_recipients {
            queued.skipped.push(format!(
                "{} to {} recipients sent to the first {} only (tickets.max_recipients)",
                draft.kind.as_str(),
                draft.to.len(),
                settings.max_recipients
            ));
        }
        for (r, to) in draft.to.iter().take(settings.max_recipients).enumerate() {
            if let Err(why) = crate::domain::render::check_recipient(to) {
                queued
                    .skipped
                    .push(format!("no {} to {}: {why}", draft.kind.as_str(), to.email));
                continue;
            }
            let token = Token {
                number: t.number,
                contact: contacts.id_for(to, now),
            };
            let tag = format!("{}{d}{r}.{unique}", &draft.kind.as_str()[..1]);
            let mut out = draft.address(settings, to, token, &tag);
            if draft.with_attachments {
                out.attachments = attachments.to_vec();
            }
            let raw_out = match render(&out, now) {
                Ok(raw) => raw,
                Err(e) => {
                    queued
                        .skipped
                        .push(format!("no {} to {}: {e}", draft.kind.as_str(), to.email));
                    continue;
                }
            };
            let visibility = if draft.kind.is_public() {
                Visibility::Public
            } else {
                Visibility::Internal
            };
            let shown = Shown {
                class: draft.kind.as_str(),
                visibility,
                threaded_by: "desk",
            };
            messages.push(outbound_row(
                messages_seq.take(),
                t.id.0,
                &out,
                &raw_out,
                shown,
                now,
            ));
            outbox_rows.push(outbox_row(
                Some(t.id.0),
                draft.kind.as_str(),
                &out,
                raw_out,
                now,
            ));
            queued
                .ids
                .push((out.message_id.clone(), draft.kind.clone()));
        }
    }
    for why in &queued.skipped {
        warn!(ticket = %t.number, reason = why.as_str(), "recipient skipped");
    }
    queued
}
