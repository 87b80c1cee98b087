use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tickets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    #[sea_orm(unique)]
    pub number: String,
    pub kind: String,
    pub subject: String,
    pub status: String,
    pub priority: String,
    pub customer_id: i64,
    pub mailbox: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The staff member's address, lower-cased.
    pub assignee: Option<String>,
    /// The staff group the ticket is routed to when nobody is assigned.
    pub team: Option<String>,
    /// Custom fields, a JSON object of strings.
    pub fields: String,
    pub resolved_at: Option<DateTimeUtc>,
    /// The Message-ID the conversation started with; relayed answers reference it.
    pub root_message_id: Option<String>,
    /// The newest Message-ID the customer has seen or sent; relayed answers reply to it.
    pub last_public_message_id: Option<String>,
    /// The service the ticket is about; its SLA policy sets the targets.
    pub service: Option<String>,
    pub response_due_at: Option<DateTimeUtc>,
    pub resolution_due_at: Option<DateTimeUtc>,
    /// The first public answer from staff.
    pub responded_at: Option<DateTimeUtc>,
    /// When the SLA job must next look at the ticket; `None`: nothing to watch.
    pub sla_next_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
