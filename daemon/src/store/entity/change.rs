use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "changes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub ticket_id: i64,
    pub state: String,
    pub risk: Option<String>,
    pub impact: Option<String>,
    pub window_start: Option<DateTimeUtc>,
    pub window_end: Option<DateTimeUtc>,
    pub window_zone: Option<String>,
    pub round: i32,
    pub board: Option<String>,
    /// One address per line.
    pub approvers: String,
    pub quorum: String,
    pub submitted_at: Option<DateTimeUtc>,
    pub submitted_by: Option<String>,
    pub deadline_at: Option<DateTimeUtc>,
    /// Overlap and freeze warnings of the last submission, one per line.
    pub flags: String,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
