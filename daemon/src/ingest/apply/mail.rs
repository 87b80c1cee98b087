//! One mail of a batch: placed on a ticket (threading and the reopen rule),
//! applied to the ticket's state by the conversation rules, and turned into
//! rows. The decisions are the domain's (`domain::intake`,
//! `domain::conversation`); this file keeps the batch's books.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use tracing::{debug, info, warn};

use super::known::{Lookups, TOO_LARGE_KIND, View};
use super::relationship::Answer;
use super::rows::{InboundRow, Rows, participant_row, quarantine_row};
use super::{Incoming, Outcome, Oversize, dedup_token};
use crate::domain::classify::{Class, classify};
use crate::domain::conversation::{self, Author, Draft, DraftKind, Effects, MailIn, Settings};
use crate::domain::intake::{self, MailFacts, Placed};
use crate::domain::mail::{Address, Inbound};
use crate::domain::render::render;
use crate::domain::satisfaction;
use crate::domain::staff::StaffMember;
use crate::domain::threading::{self, TicketRef};
use crate::domain::ticket::{ContactId, Kind, Status, TicketId, TicketNumber};
use crate::domain::token::Token;
use crate::error::{Error, Result};
use crate::ingest::parse::{self, Parsed};
use crate::store::entity::{attachment, supplier_escalation, ticket_key, ticket_link};
use crate::store::rows::outbox_row;
use crate::tickets::{Counter, Queue, Queued, events, queue_drafts};

/// A batch being decided: what it was read against, the id counters, and
/// the rows its mails add.
pub(super) struct Decider<'s> {
    pub settings: &'s Settings,
    pub now: DateTime<Utc>,
    pub look: Lookups,
    pub tickets_seq: Counter,
    pub messages_seq: Counter,
    pub rows: Rows,
}

impl Decider<'_> {
    /// Decides mail `i` of the batch. `held` is why an earlier try of this
    /// batch quarantined it.
    pub fn take(
        &mut self,
        i: usize,
        m: &Incoming,
        tokens: &[Token],
        held: Option<&String>,
    ) -> Result<Outcome> {
        let dedup_key = &m.parsed.dedup_key;
        if !self.look.seen.insert(dedup_key.clone()) {
            debug!(
                mailbox = m.mailbox,
                uid = m.uid,
                dedup_key,
                "duplicate: already stored"
            );
            return Ok(Outcome::Duplicate);
        }
        let inbound = match (held, &m.parsed.parsed) {
            (Some(reason), _) | (None, Parsed::Quarantine(reason)) => {
                return Ok(self.hold(i, m, reason.clone()));
            }
            (None, Parsed::Mail(mail)) => mail,
        };
        // parse() quarantines mail without a sender; should one slip
        // through, it is quarantined here too, never dropped.
        let Some(sender) = inbound.from.clone() else {
            return Ok(self.hold(i, m, "no sender address".to_string()));
        };
        self.store(i, m, inbound, &sender, tokens)
    }

    fn hold(&mut self, i: usize, m: &Incoming, reason: String) -> Outcome {
        if let Some(o) = m.oversize {
            self.tell_too_large(i, m, o);
        }
        self.rows
            .quarantine_raw
            .push((self.rows.quarantine.len(), i));
        self.rows.quarantine.push(quarantine_row(
            m.parsed.dedup_key.clone(),
            m.mailbox.clone(),
            m.uid,
            Vec::new(),
            reason.clone(),
            self.now,
        ));
        Outcome::Quarantined(reason)
    }

    fn store(
        &mut self,
        i: usize,
        m: &Incoming,
        inbound: &Inbound,
        sender: &Address,
        tokens: &[Token],
    ) -> Result<Outcome> {
        let (settings, now) = (self.settings, self.now);
        let class = classify(inbound);
        let contact = self.look.contacts.id_for(sender, now);
        let facts = MailFacts {
            mail: inbound,
            sender,
            class: &class,
            tokens,
            contact,
        };
        // A rating keeps to its ticket, resolved long ago or closed.
        let answer = self.rating_of(m, inbound, &class, contact, tokens);
        let rated_ticket = answer.as_ref().map(|a| a.ticket);
        let states = &self.look.states;
        let Placed { route, author } = intake::place(settings, &facts, &self.look.known, |id| {
            Some(id) != rated_ticket
                && states
                    .by_id
                    .get(&id)
                    .is_some_and(|st| st.is_finished(now, settings.reopen_window))
        });
        let answer = answer.filter(|a| {
            route.ticket.map(|t| t.id) == Some(a.ticket) && matches!(author, Author::Customer)
        });
        let new_ticket = route.ticket.is_none();
        let mut mail = Cow::Borrowed(inbound);
        if !new_ticket && mail.new_text.is_none() {
            mail.to_mut().new_text = Some(parse::new_text_of(&m.raw));
        }
        let t = match route.ticket {
            Some(t) => t,
            None => self.open(&mail, sender, contact, &m.mailbox, route.link),
        };
        if !new_ticket {
            self.join(t, sender, &author, contact)?;
        }
        if let Some(mid) = &mail.message_id {
            self.look.known.by_mid.insert(mid.clone(), t);
        }
        self.keep_keys(t, &mail);
        let bounced = self.bounced(&mail, &class);
        let may_acknowledge = new_ticket
            && matches!(author, Author::Customer)
            && self
                .look
                .contacts
                .ack_allowed(contact, now, settings.ack_limit_per_hour);
        let known_error = self.known_error(t, new_ticket, &author, &mail);
        let state = self
            .look
            .states
            .by_id
            .get_mut(&t.id)
            .ok_or_else(|| vanished(t))?;
        let input = MailIn {
            mail: &mail,
            sender,
            author: &author,
            class: &class,
            new_ticket,
            may_acknowledge,
            bounced,
            known_error: known_error.as_ref(),
        };
        let before = state.status;
        let relation = &mut self.look.relation;
        let fx = match &answer {
            Some(a) => {
                relation.rated(a, contact, now);
                info!(
                    ticket = %t.number,
                    message_id = mail.message_id.as_deref().unwrap_or(""),
                    score = a.rating.score,
                    "rating recorded"
                );
                satisfaction::rated(settings, state, &input, &a.rating, &a.asked)
            }
            None => {
                let mut fx = conversation::apply(
                    settings,
                    state,
                    &input,
                    &View {
                        known: &self.look.known,
                        problems: &self.look.problems,
                        releases: &self.look.releases,
                        outages: &self.look.outages,
                    },
                    now,
                );
                if matches!(author, Author::Customer) {
                    relation.persons.insert(t.id);
                }
                fx.drafts
                    .extend(satisfaction::complaint_notice(settings, state, &input, &fx));
                if satisfaction::asks(settings, state, before, relation.persons.contains(&t.id)) {
                    fx.drafts.push(satisfaction::request(settings, state));
                }
                fx
            }
        };
        // A rating changes no field of its ticket: the row stays as it was
        // (its `updated_at` too, which reports read for old closed tickets).
        if answer.is_none() {
            self.look.states.touch(t.id);
        }
        let message_id = self.messages_seq.take();
        self.record(t, message_id, &mail, &fx, new_ticket)?;
        info!(
            mailbox = m.mailbox,
            uid = m.uid,
            message_id = mail.message_id.as_deref().unwrap_or(""),
            ticket = %t.number,
            rule = route.rule,
            class = class.as_str(),
            author = author.as_str(),
            mails = fx.drafts.len(),
            flag = fx.flag.as_deref().unwrap_or(""),
            "decided"
        );
        if let Some(flag) = &fx.flag {
            warn!(ticket = %t.number, message_id = mail.message_id.as_deref().unwrap_or(""), flag, "flagged");
        }
        let decided = Decided {
            t,
            mail: &mail,
            class: &class,
            fx: &fx,
            author: author.as_str(),
            rule: route.rule,
        };
        let queued = self.answer(i, m, &decided, message_id);
        self.keep_requests(t, &queued);
        self.problem_effects(m, t, &fx, &author)?;
        self.release_effects(m, t, &fx, &author)?;
        if let (Some(o), Author::Staff(member)) = (&fx.outage, &author) {
            self.look.outages.apply(t.id, o, &member.email, self.now);
        }
        Ok(Outcome::Stored {
            ticket: t.number.to_string(),
            new_ticket,
            acknowledged: queued
                .ids
                .iter()
                .any(|(_, k)| *k == DraftKind::Acknowledgement),
            mails: queued.ids.len(),
            rule: route.rule,
        })
    }

    /// Queues the desk's mails a decided mail causes and writes its message
    /// row (which records the recipients skipped).
    fn answer(&mut self, i: usize, m: &Incoming, d: &Decided<'_>, message_id: i64) -> Queued {
        let (t, fx) = (d.t, d.fx);
        let unique = dedup_token(&m.parsed.dedup_key);
        let attachments =
            if fx.drafts.iter().any(|d| d.with_attachments) && !d.mail.attachments.is_empty() {
                parse::attachments(&m.raw)
            } else {
                Vec::new()
            };
        let queued = queue_drafts(
            self.settings,
            t,
            &fx.drafts,
            &attachments,
            &unique,
            Queue {
                contacts: &mut self.look.contacts,
                messages_seq: &mut self.messages_seq,
                messages: &mut self.rows.messages,
                outbox: &mut self.rows.outbox,
            },
            self.now,
        );
        self.rows.message_raw.push((self.rows.messages.len(), i));
        self.rows.messages.push(
            InboundRow {
                id: message_id,
                ticket_id: t.id,
                mail: d.mail,
                class: d.class,
                fx,
                author: d.author,
                rule: d.rule,
                dedup_key: m.parsed.dedup_key.clone(),
                mailbox: m.mailbox.clone(),
                uid: m.uid,
                skipped: &queued.skipped,
                now: self.now,
            }
            .build(),
        );
        for (id, _) in &queued.ids {
            self.look.known.by_mid.insert(id.clone(), t);
        }
        // Later answers reply to the newest mail the customer received.
        if let Some(state) = self.look.states.by_id.get_mut(&t.id)
            && let Some((id, _)) = queued
                .ids
                .iter()
                .rev()
                .find(|(_, kind)| *kind == DraftKind::Answer)
        {
            state.last_public_message_id = Some(id.clone());
        }
        queued
    }

    /// Opens a ticket of the desk's own work (a problem, a release) from
    /// another, assigned to the staff member who asked, linked from `from`,
    /// and tells them with a mail they can reply to (`notice`: the new
    /// ticket, the one it came from, the member).
    pub(super) fn open_for_staff(
        &mut self,
        o: Opening<'_>,
        notice: fn(
            &Settings,
            &crate::domain::conversation::TicketState,
            &crate::domain::conversation::TicketState,
            &StaffMember,
        ) -> Draft,
    ) -> Result<TicketRef> {
        let (settings, now) = (self.settings, self.now);
        let id = TicketId(self.tickets_seq.take());
        let address = o.member.address();
        let contact = self.look.contacts.id_for(&address, now);
        let mut state = intake::new_ticket(id, o.title, &address, o.mailbox, settings, now);
        state.kind = o.kind;
        state.number = TicketNumber {
            kind: o.kind,
            seq: id.0,
        };
        state.status = Status::Open;
        state.assignee = Some(o.member.email.clone());
        // The desk's own work: no customer SLA runs on it.
        state.service = None;
        let t = TicketRef {
            id,
            number: state.number,
        };
        let from = self
            .look
            .states
            .by_id
            .get(&o.from.id)
            .ok_or_else(|| vanished(o.from))?;
        let drafts = vec![notice(settings, &state, from, o.member)];
        if settings.emit_events {
            self.rows
                .events
                .push(events::for_ticket(&state, "ticket.created", &[]));
        }
        self.look.states.create(state, contact);
        self.look.known.participants.insert((id, address.email));
        self.look.known.by_number.insert(t.number.seq, t);
        self.rows.links.push(link_row(o.from.id, id, o.reason));
        self.queue(t, &drafts, o.unique);
        info!(ticket = %t.number, from = %o.from.number, by = o.member.email, kind = o.kind.as_str(), "opened by staff");
        Ok(t)
    }

    pub(super) fn queue(&mut self, t: TicketRef, drafts: &[Draft], unique: &str) -> Queued {
        queue_drafts(
            self.settings,
            t,
            drafts,
            &[],
            unique,
            Queue {
                contacts: &mut self.look.contacts,
                messages_seq: &mut self.messages_seq,
                messages: &mut self.rows.messages,
                outbox: &mut self.rows.outbox,
            },
            self.now,
        )
    }

    /// The rating a mail gives, if it replies to a rating request sent to
    /// its sender and its new text starts with a score.
    fn rating_of(
        &self,
        m: &Incoming,
        mail: &Inbound,
        class: &Class,
        contact: ContactId,
        tokens: &[Token],
    ) -> Option<Answer> {
        if !class.may_answer() {
            return None;
        }
        let relation = &self.look.relation;
        let by_token = || {
            if !mail.in_reply_to.is_empty() || !mail.references.is_empty() {
                return None;
            }
            tokens
                .iter()
                .filter(|t| t.contact == contact)
                .find_map(|t| {
                    let r = self.look.known.by_number.get(&t.number.seq)?;
                    let st = self.look.states.by_id.get(&r.id)?;
                    if !matches!(st.status, Status::Resolved | Status::Closed) {
                        return None;
                    }
                    relation.latest_for(r.id, contact, st.resolved_at)
                })
        };
        let (request, r) = relation
            .request_for(&mail.in_reply_to, &mail.references, contact)
            .or_else(by_token)?;
        let text = match &mail.new_text {
            Some(t) => Cow::Borrowed(t.as_str()),
            None => Cow::Owned(parse::new_text_of(&m.raw)),
        };
        Some(Answer {
            request: request.to_string(),
            ticket: r.ticket,
            asked: r.asked.clone(),
            rating: satisfaction::parse(&text)?,
        })
    }

    /// Keeps the rating requests a mail queued, so the answers find them.
    pub(super) fn keep_requests(&mut self, t: TicketRef, queued: &Queued) {
        let Some(state) = self.look.states.by_id.get(&t.id) else {
            return;
        };
        for (id, kind) in &queued.ids {
            if *kind == DraftKind::SatisfactionRequest {
                let contact = self.look.contacts.id_for(&state.customer, self.now);
                self.look
                    .relation
                    .asked(id.clone(), state, contact, self.now);
            }
        }
    }

    /// Tells the sender of a mail too large to take, once a day at most.
    fn tell_too_large(&mut self, i: usize, m: &Incoming, o: Oversize) {
        let Some(head) = self.look.heads.get(&i) else {
            return;
        };
        let unique = dedup_token(&m.parsed.dedup_key);
        let Some(out) = intake::too_large_notice(self.settings, head, o.size, o.limit, &unique)
        else {
            return;
        };
        let to = out.to.first().map(|a| a.email.clone()).unwrap_or_default();
        if !self.look.told_too_large.insert(to.clone()) {
            return;
        }
        match render(&out, self.now) {
            Ok(raw) => {
                info!(
                    to,
                    message_id = out.message_id,
                    "told the sender the mail is too large"
                );
                self.rows
                    .outbox
                    .push(outbox_row(None, TOO_LARGE_KIND, &out, raw, self.now));
            }
            Err(e) => warn!(to, error = %e, "no too-large notice: it cannot be written"),
        }
    }

    /// Opens a new ticket for a mail, linked to `link` when given.
    fn open(
        &mut self,
        mail: &Inbound,
        sender: &Address,
        contact: ContactId,
        mailbox: &str,
        link: Option<(TicketId, &'static str)>,
    ) -> TicketRef {
        let id = TicketId(self.tickets_seq.take());
        let state = intake::new_ticket(id, &mail.subject, sender, mailbox, self.settings, self.now);
        let t = TicketRef {
            id,
            number: state.number,
        };
        self.look.states.create(state, contact);
        let known = &mut self.look.known;
        known.participants.insert((id, sender.email.clone()));
        known.by_number.insert(t.number.seq, t);
        if let Some((other, reason)) = link {
            self.rows.links.push(ticket_link::ActiveModel {
                ticket_id: Set(id.0),
                other_id: Set(other.0),
                reason: Set(reason.into()),
            });
        }
        t
    }

    /// Makes the sender of a mail to an existing ticket one of its participants.
    fn join(
        &mut self,
        t: TicketRef,
        sender: &Address,
        author: &Author,
        contact: ContactId,
    ) -> Result<()> {
        let state = self
            .look
            .states
            .by_id
            .get_mut(&t.id)
            .ok_or_else(|| vanished(t))?;
        let Some(role) = intake::join(state, sender, author) else {
            return Ok(());
        };
        self.rows
            .participants
            .push(participant_row(t.id, contact, role));
        self.look
            .known
            .participants
            .insert((t.id, sender.email.clone()));
        Ok(())
    }

    /// Keeps the Message-IDs a mail names that the desk has not seen as
    /// keys of its ticket, so the mails they name join it when they come
    /// (in any order). The newest references only: a long thread's
    /// References header can name hundreds.
    fn keep_keys(&mut self, t: TicketRef, mail: &Inbound) {
        const KEYS_PER_MAIL: usize = 50;
        let refs = &mail.references[mail.references.len().saturating_sub(KEYS_PER_MAIL)..];
        for id in threading::referenced(&mail.in_reply_to, refs) {
            if !self.look.known.by_mid.contains_key(id) {
                self.look.known.by_mid.insert(id.to_string(), t);
                self.rows.keys.push(ticket_key::ActiveModel {
                    message_id: Set(id.to_string()),
                    ticket_id: Set(t.id.0),
                });
            }
        }
    }

    /// A bounce of a desk mail: marks its outbox row and says who failed and why.
    fn bounced(&mut self, mail: &Inbound, class: &Class) -> Option<String> {
        if !class.is_bounce() {
            return None;
        }
        let b = mail.bounce.as_ref()?;
        let (outbox_id, recipients) = self
            .look
            .bounce_targets
            .get(b.original_message_id.as_ref()?)?;
        let what = intake::bounce_summary(b, recipients)?;
        self.rows
            .bounced
            .push((*outbox_id, format!("bounced: {what}")));
        Some(what)
    }

    /// The rows of a mail's effects besides its message and the desk's mails.
    fn record(
        &mut self,
        t: TicketRef,
        message_id: i64,
        mail: &Inbound,
        fx: &Effects,
        new_ticket: bool,
    ) -> Result<()> {
        let now = self.now;
        let rows = &mut self.rows;
        let known = &mut self.look.known;
        rows.attachments
            .extend(mail.attachments.iter().map(|a| attachment::ActiveModel {
                message_id: Set(message_id),
                part: Set(a.part as i32),
                filename: Set(a.filename.clone()),
                content_type: Set(a.content_type.clone()),
                size: Set(a.size as i64),
                sha256: Set(a.sha256.clone()),
                ..Default::default()
            }));
        for p in &fx.added {
            let id = self.look.contacts.id_for(&p.address, now);
            rows.participants.push(participant_row(t.id, id, p.role));
            known.participants.insert((t.id, p.address.email.clone()));
        }
        for e in &fx.removed {
            rows.removed.push((t.id, e.clone()));
            known.participants.remove(&(t.id, e.clone()));
        }
        for n in &fx.links {
            if let Some(other) = known.by_number.get(&n.seq) {
                rows.links.push(ticket_link::ActiveModel {
                    ticket_id: Set(t.id.0),
                    other_id: Set(other.id.0),
                    reason: Set("linked by staff".into()),
                });
            }
        }
        rows.escalations
            .extend(fx.escalations.iter().map(|(supplier, note)| {
                supplier_escalation::ActiveModel {
                    ticket_id: Set(t.id.0),
                    supplier: Set(supplier.clone()),
                    note: Set(note.clone()),
                    escalated_at: Set(now),
                    responded_at: Set(None),
                    resolved_at: Set(None),
                    ..Default::default()
                }
            }));
        if let Some(supplier) = &fx.supplier_reply {
            rows.supplier_replies.push((t.id, supplier.clone()));
        }
        if let Some(state) = self.look.states.by_id.get(&t.id) {
            let by = mail.from.as_ref().map(|a| a.email.as_str()).unwrap_or("");
            let message_id = mail.message_id.as_deref().unwrap_or("");
            rows.changes.collect(state, fx, (by, message_id), now);
        }
        if self.settings.emit_events {
            let state = self
                .look
                .states
                .by_id
                .get(&t.id)
                .ok_or_else(|| vanished(t))?;
            rows.events
                .extend(events::for_mail(state, mail, fx, new_ticket));
            rows.events.extend(super::changes::events(state, fx));
        }
        Ok(())
    }
}

/// A ticket staff open from another (`/problem`, `/release new`).
pub(super) struct Opening<'a> {
    pub kind: Kind,
    pub title: &'a str,
    pub member: &'a StaffMember,
    pub mailbox: &'a str,
    pub from: TicketRef,
    /// The link's reason, from `from` to the new ticket.
    pub reason: &'a str,
    pub unique: &'a str,
}

/// A mail decided: its ticket, and what the conversation rules made of it.
struct Decided<'a> {
    t: TicketRef,
    mail: &'a Inbound,
    class: &'a Class,
    fx: &'a Effects,
    author: &'static str,
    rule: &'static str,
}

pub(super) fn link_row(
    ticket: TicketId,
    other: TicketId,
    reason: &str,
) -> ticket_link::ActiveModel {
    ticket_link::ActiveModel {
        ticket_id: Set(ticket.0),
        other_id: Set(other.0),
        reason: Set(reason.into()),
    }
}

pub(super) fn vanished(t: TicketRef) -> Error {
    Error::Invalid(format!("ticket {} vanished during the batch", t.number))
}
