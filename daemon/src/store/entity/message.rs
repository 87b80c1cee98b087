use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    pub ticket_id: i64,
    pub direction: String,
    pub message_id: Option<String>,
    #[sea_orm(unique)]
    pub dedup_key: String,
    pub in_reply_to: String,
    pub references: String,
    pub from_addr: String,
    pub to_addrs: String,
    pub cc_addrs: String,
    pub subject: String,
    pub body_text: String,
    pub visibility: String,
    pub class: String,
    pub threaded_by: String,
    pub mailbox: Option<String>,
    pub uid: Option<i64>,
    pub warnings: String,
    pub created_at: DateTimeUtc,
    /// customer, staff, supplier, robot or desk.
    pub author: String,
    /// Why the message needs a human look, e.g. a refused staff claim.
    pub flag: Option<String>,
    pub raw: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
