//! Message-IDs a ticket's mails refer to that the desk never stored.
//!
//! A reply can arrive (or be imported) before the mail it answers, and two
//! replies can answer a mail the desk never saw. Each referenced ID is kept
//! as a key of the ticket the referring mail went to (the first ticket
//! wins), so the answered mail, or another reply naming it, joins that
//! ticket whatever the order of arrival.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TicketKeys::Table)
                    .col(text(TicketKeys::MessageId).primary_key())
                    .col(big_integer(TicketKeys::TicketId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ticket_keys_ticket")
                    .table(TicketKeys::Table)
                    .col(TicketKeys::TicketId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TicketKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum TicketKeys {
    Table,
    MessageId,
    TicketId,
}
