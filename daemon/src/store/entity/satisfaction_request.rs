use sea_orm::entity::prelude::*;

/// A rating request the desk sent when a ticket was resolved; the
/// customer's answer threads to its Message-ID.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "satisfaction_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub message_id: String,
    pub ticket_id: i64,
    /// The customer asked.
    pub contact_id: i64,
    pub asked_at: DateTimeUtc,
    /// The assignee at the resolution.
    pub assignee: Option<String>,
    /// The service at the resolution.
    pub service: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
