//! The plugin event outbox (`migrations/…_000003_plugin_events.rs`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub hook: String,
    /// The event as JSON (plugin-api's `Event`; its `id` is filled in at dispatch).
    pub payload: String,
    /// pending, done or failed.
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub next_attempt_at: DateTimeUtc,
    pub done_at: Option<DateTimeUtc>,
    /// The plugin whose actions caused this event.
    pub origin: Option<String>,
    /// JSON: plugins done with the event and failures per plugin.
    pub delivery: Option<String>,
    /// JSON: vetoes of a gate event, `[{"plugin": …, "reason": …}]`.
    pub vetoes: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
