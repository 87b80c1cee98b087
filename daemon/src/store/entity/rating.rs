use sea_orm::entity::prelude::*;

/// A customer's answer to a rating request: 1 to 5 and optional words.
/// Every answer is kept; the figures count the latest per request.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ratings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub ticket_id: i64,
    pub contact_id: i64,
    /// The Message-ID of the request it answers.
    pub request_message_id: String,
    pub score: i16,
    pub comment: String,
    pub rated_at: DateTimeUtc,
    /// The assignee at the resolution (from the request).
    pub assignee: Option<String>,
    /// The service at the resolution (from the request).
    pub service: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
