//! `helpdeskd change list|show`: changes read from the database, with their
//! approvals, refused answers and history (README "Changes and
//! configuration items").

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::config::Config;
use crate::domain::changes::{Record, State};
use crate::domain::ticket::{Kind, TicketNumber};
use crate::error::{Error, Result};
use crate::store::entity::{change, change_history, ticket, ticket_item};

/// One change as listed and shown.
pub struct Shown {
    pub number: String,
    pub ticket: ticket::Model,
    pub record: Record,
    /// The services the items affect, through the configured relations.
    pub services: Vec<String>,
    pub history: Vec<change_history::Model>,
}

impl Shown {
    fn count(&self, action: &str, current_round: bool) -> usize {
        self.history
            .iter()
            .filter(|h| h.action == action)
            .filter(|h| !current_round || h.round as u32 == self.record.round)
            .count()
    }

    pub fn json(&self) -> Value {
        let r = &self.record;
        let rows = |action: Option<&str>| -> Vec<Value> {
            self.history
                .iter()
                .filter(|h| action.is_none_or(|a| h.action == a))
                .map(|h| {
                    json!({"at": h.at.to_rfc3339(), "round": h.round, "actor": h.actor,
                           "action": h.action, "detail": h.detail, "proof": h.proof})
                })
                .collect()
        };
        json!({
            "number": self.number,
            "ticket": self.ticket.number,
            "subject": self.ticket.subject,
            "assignee": self.ticket.assignee,
            "state": r.state.as_str(),
            "risk": r.risk.map(|x| x.as_str()),
            "impact": r.impact,
            "window": r.window.as_ref().map(|w| json!({
                "start": w.start.to_rfc3339(), "end": w.end.to_rfc3339(), "zone": w.zone})),
            "items": r.items,
            "services": self.services,
            "round": r.round,
            "board": r.board,
            "approvers": r.approvers,
            "quorum": r.quorum.to_string(),
            "deadline": r.deadline.map(|d| d.to_rfc3339()),
            "submitted_by": r.submitted_by,
            "flags": r.flags,
            "approvals": self.count("approve", true),
            "rejections": self.count("reject", true),
            "refused": self.count("refused", false),
            "answers": self.history.iter()
                .filter(|h| (h.action == "approve" || h.action == "reject") && h.round as u32 == r.round)
                .map(|h| json!({"approver": h.actor, "verdict": h.action, "words": h.detail,
                                "at": h.at.to_rfc3339(), "proof": h.proof}))
                .collect::<Vec<_>>(),
            "refusals": rows(Some("refused")),
            "history": rows(None),
        })
    }

    pub fn text(&self) -> String {
        let r = &self.record;
        let mut s = format!(
            "{} ({})  {}\n\
             state:     {}\n\
             risk:      {}\n\
             impact:    {}\n\
             window:    {}\n\
             items:     {}\n\
             services:  {}\n\
             assignee:  {}\n",
            self.number,
            self.ticket.number,
            self.ticket.subject,
            r.state.as_str(),
            r.risk.map(|x| x.as_str()).unwrap_or("-"),
            r.impact.as_deref().unwrap_or("-"),
            r.window
                .as_ref()
                .map(|w| w.describe())
                .unwrap_or("-".into()),
            dash(&r.items.join(", ")),
            dash(&self.services.join(", ")),
            self.ticket.assignee.as_deref().unwrap_or("-"),
        );
        if r.round > 0 {
            s.push_str(&format!(
                "round:     {} (board {}, quorum {} of {}, deadline {} UTC, submitted by {})\n\
                 approvers: {}\n",
                r.round,
                r.board.as_deref().unwrap_or("-"),
                r.quorum.needed(r.approvers.len()),
                r.approvers.len(),
                r.deadline
                    .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default(),
                r.submitted_by.as_deref().unwrap_or("-"),
                r.approvers.join(", "),
            ));
        }
        for f in &r.flags {
            s.push_str(&format!("flag:      {f}\n"));
        }
        s.push_str(&format!(
            "\nanswers of round {}: {} approved, {} rejected; refused answers (all rounds): {}\n",
            r.round,
            self.count("approve", true),
            self.count("reject", true),
            self.count("refused", false)
        ));
        for h in self.history.iter().filter(|h| {
            (h.action == "approve" || h.action == "reject") && h.round as u32 == r.round
        }) {
            s.push_str(&format!(
                "  {:<8} {} at {} — {}\n",
                h.action,
                h.actor,
                h.at.format("%Y-%m-%d %H:%M:%S"),
                h.detail
            ));
        }
        let refused: Vec<_> = self
            .history
            .iter()
            .filter(|h| h.action == "refused")
            .collect();
        if !refused.is_empty() {
            s.push_str("\nrefused answers:\n");
            for h in refused {
                s.push_str(&format!(
                    "  {} from {} (round {}): {}\n    proof: {}\n",
                    h.at.format("%Y-%m-%d %H:%M:%S"),
                    h.actor,
                    h.round,
                    h.detail,
                    h.proof
                ));
            }
        }
        s.push_str("\nhistory:\n");
        for h in &self.history {
            s.push_str(&format!(
                "  {}  {:<11} {:<30} {}\n    proof: {}\n",
                h.at.format("%Y-%m-%d %H:%M:%S"),
                h.action,
                h.actor,
                h.detail,
                dash(&h.proof)
            ));
        }
        s
    }
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// Every change (tickets of kind change), oldest first; with `state`,
/// only those in it.
pub async fn list(
    db: &DatabaseConnection,
    config: &Config,
    state: Option<State>,
) -> Result<Vec<Shown>> {
    let tickets = ticket::Entity::find()
        .filter(ticket::Column::Kind.eq(Kind::Change.as_str()))
        .order_by_asc(ticket::Column::Id)
        .all(db)
        .await?;
    let mut out = Vec::new();
    for t in tickets {
        let s = shown(db, config, t, false).await?;
        if state.is_none_or(|st| st == s.record.state) {
            out.push(s);
        }
    }
    Ok(out)
}

/// One change by its number (`CHG-000012`; the sequence names the ticket,
/// so `INC-000012` made a change by `/kind change` is the same).
pub async fn show(db: &DatabaseConnection, config: &Config, number: &str) -> Result<Shown> {
    let n: TicketNumber = number.parse().map_err(Error::NotFound)?;
    let t = ticket::Entity::find_by_id(n.seq)
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no change {number}")))?;
    if t.kind != Kind::Change.as_str() {
        return Err(Error::NotFound(format!(
            "{} is a {}, not a change",
            t.number, t.kind
        )));
    }
    shown(db, config, t, true).await
}

async fn shown(
    db: &DatabaseConnection,
    config: &Config,
    t: ticket::Model,
    with_history: bool,
) -> Result<Shown> {
    let mut record = match change::Entity::find_by_id(t.id).one(db).await? {
        Some(r) => crate::ingest::apply::change_record(&r)?,
        None => Record::default(),
    };
    record.items = ticket_item::Entity::find()
        .filter(ticket_item::Column::TicketId.eq(t.id))
        .order_by_asc(ticket_item::Column::AddedAt)
        .all(db)
        .await?
        .into_iter()
        .map(|i| i.item)
        .collect();
    let history = change_history::Entity::find()
        .filter(change_history::Column::TicketId.eq(t.id))
        .order_by_asc(change_history::Column::Id)
        .all(db)
        .await?;
    let history = if with_history {
        history
    } else {
        // The list needs the counts only.
        history
            .into_iter()
            .filter(|h| matches!(h.action.as_str(), "approve" | "reject" | "refused"))
            .collect()
    };
    let services = config.changes.catalog.services_of(&record.items);
    Ok(Shown {
        number: TicketNumber {
            kind: Kind::Change,
            seq: t.id,
        }
        .to_string(),
        ticket: t,
        record,
        services,
        history,
    })
}

/// The one-line form of `change list`.
pub fn line(s: &Shown) -> String {
    let r = &s.record;
    format!(
        "{:<11} {:<11} {:<6} {:<36} {:>2}/{:<2} refused {:<2} {}",
        s.number,
        r.state.as_str(),
        r.risk.map(|x| x.as_str()).unwrap_or("-"),
        r.window
            .as_ref()
            .map(|w| format!(
                "{} – {}",
                w.start.format("%Y-%m-%d %H:%M"),
                w.end.format("%Y-%m-%d %H:%M")
            ))
            .unwrap_or_else(|| "-".into()),
        s.count("approve", true),
        r.quorum.needed(r.approvers.len()),
        s.count("refused", false),
        s.ticket.subject
    )
}
