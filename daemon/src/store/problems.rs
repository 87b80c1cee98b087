//! The problems of `helpdeskd problem list`: each problem ticket with its
//! record and how many of its linked tickets are still open.

use std::collections::HashMap;

use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::Store;
use super::entity::{problem, ticket, ticket_link};
use crate::domain::ticket::{Kind, Status};
use crate::error::Result;

/// A problem as listed.
#[derive(Clone, Debug)]
pub struct ProblemRow {
    pub ticket: ticket::Model,
    pub root_cause: Option<String>,
    pub workaround: Option<String>,
    pub known_error: bool,
    pub keywords: String,
    /// Linked tickets (incidents, requests) in all.
    pub linked: usize,
    /// Of them, neither resolved nor closed.
    pub linked_open: usize,
}

impl Store {
    /// Every problem ticket, oldest first; only known errors when asked.
    pub async fn problems(&self, known_errors_only: bool) -> Result<Vec<ProblemRow>> {
        let tickets = ticket::Entity::find()
            .filter(ticket::Column::Kind.eq(Kind::Problem.as_str()))
            .order_by_asc(ticket::Column::Id)
            .all(&self.db)
            .await?;
        let mut records: HashMap<i64, problem::Model> = HashMap::new();
        let mut links: HashMap<i64, Vec<i64>> = HashMap::new();
        let mut others: HashMap<i64, String> = HashMap::new();
        for chunk in tickets.chunks(500) {
            let ids: Vec<i64> = chunk.iter().map(|t| t.id).collect();
            for r in problem::Entity::find()
                .filter(problem::Column::TicketId.is_in(ids.clone()))
                .all(&self.db)
                .await?
            {
                records.insert(r.ticket_id, r);
            }
            for l in ticket_link::Entity::find()
                .filter(
                    Condition::any()
                        .add(ticket_link::Column::TicketId.is_in(ids.clone()))
                        .add(ticket_link::Column::OtherId.is_in(ids.clone())),
                )
                .all(&self.db)
                .await?
            {
                let (p, other) = if ids.contains(&l.ticket_id) {
                    (l.ticket_id, l.other_id)
                } else {
                    (l.other_id, l.ticket_id)
                };
                let list = links.entry(p).or_default();
                if !list.contains(&other) {
                    list.push(other);
                }
            }
        }
        let other_ids: Vec<i64> = links.values().flatten().copied().collect();
        for chunk in other_ids.chunks(500) {
            for t in ticket::Entity::find()
                .filter(ticket::Column::Id.is_in(chunk.iter().copied()))
                .filter(ticket::Column::Kind.ne(Kind::Problem.as_str()))
                .all(&self.db)
                .await?
            {
                others.insert(t.id, t.status);
            }
        }
        let open = |s: &str| s != Status::Resolved.as_str() && s != Status::Closed.as_str();
        Ok(tickets
            .into_iter()
            .filter_map(|t| {
                let r = records.remove(&t.id);
                let known_error = r.as_ref().is_some_and(|r| r.known_error);
                if known_errors_only && !known_error {
                    return None;
                }
                let linked: Vec<&String> = links
                    .get(&t.id)
                    .into_iter()
                    .flatten()
                    .filter_map(|id| others.get(id))
                    .collect();
                Some(ProblemRow {
                    linked: linked.len(),
                    linked_open: linked.iter().filter(|s| open(s)).count(),
                    root_cause: r.as_ref().and_then(|r| r.root_cause.clone()),
                    workaround: r.as_ref().and_then(|r| r.workaround.clone()),
                    keywords: r.map(|r| r.keywords).unwrap_or_default(),
                    known_error,
                    ticket: t,
                })
            })
            .collect())
    }
}
