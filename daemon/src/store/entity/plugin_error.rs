//! A failed plugin call or a refused plugin action.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "plugin_errors")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub plugin: String,
    pub event_id: Option<i64>,
    pub ticket_id: Option<i64>,
    pub error: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
