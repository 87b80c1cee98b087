//! Staff work by mail: who a ticket is assigned to, when it was resolved,
//! the Message-IDs a relayed answer threads under, who wrote each message
//! (and whether a claimed staff sender was refused), and the per-sender
//! acknowledgement budget that keeps two robots from looping.
//!
//! SQLite adds one column per `ALTER TABLE`, so each column is its own statement.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let ticket_columns = [
            string_null(Tickets::Assignee),
            string_null(Tickets::Team),
            text(Tickets::Fields).default("{}").to_owned(),
            timestamp_with_time_zone_null(Tickets::ResolvedAt),
            string_null(Tickets::RootMessageId),
            string_null(Tickets::LastPublicMessageId),
        ];
        for mut col in ticket_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tickets::Table)
                        .add_column(&mut col)
                        .to_owned(),
                )
                .await?;
        }
        let message_columns = [
            string(Messages::Author).default("customer").to_owned(),
            text_null(Messages::Flag),
        ];
        for mut col in message_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Messages::Table)
                        .add_column(&mut col)
                        .to_owned(),
                )
                .await?;
        }
        let contact_columns = [
            timestamp_with_time_zone_null(Contacts::AckWindowStart),
            integer(Contacts::AckCount).default(0).to_owned(),
        ];
        for mut col in contact_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Contacts::Table)
                        .add_column(&mut col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_message_id")
                    .table(Outbox::Table)
                    .col(Outbox::MessageId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_outbox_message_id")
                    .table(Outbox::Table)
                    .to_owned(),
            )
            .await?;
        let drops = [
            (Tickets::Table.into_iden(), Tickets::Assignee.into_iden()),
            (Tickets::Table.into_iden(), Tickets::Team.into_iden()),
            (Tickets::Table.into_iden(), Tickets::Fields.into_iden()),
            (Tickets::Table.into_iden(), Tickets::ResolvedAt.into_iden()),
            (
                Tickets::Table.into_iden(),
                Tickets::RootMessageId.into_iden(),
            ),
            (
                Tickets::Table.into_iden(),
                Tickets::LastPublicMessageId.into_iden(),
            ),
            (Messages::Table.into_iden(), Messages::Author.into_iden()),
            (Messages::Table.into_iden(), Messages::Flag.into_iden()),
            (
                Contacts::Table.into_iden(),
                Contacts::AckWindowStart.into_iden(),
            ),
            (Contacts::Table.into_iden(), Contacts::AckCount.into_iden()),
        ];
        for (table, column) in drops {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Assignee,
    Team,
    Fields,
    ResolvedAt,
    RootMessageId,
    LastPublicMessageId,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Author,
    Flag,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    AckWindowStart,
    AckCount,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    MessageId,
}
