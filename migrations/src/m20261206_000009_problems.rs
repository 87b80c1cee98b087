//! Problem records: what the desk learned about a problem ticket (root
//! cause, workaround) and whether it is a known error, with the keywords
//! that match new incidents to it. One row per problem ticket, written the
//! first time a staff command sets one of them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Problems::Table)
                    .col(big_integer(Problems::TicketId).primary_key())
                    .col(text_null(Problems::RootCause))
                    .col(text_null(Problems::Workaround))
                    .col(boolean(Problems::KnownError).default(false))
                    .col(text(Problems::Keywords).default(""))
                    .col(timestamp_with_time_zone(Problems::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Problems::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Problems {
    Table,
    TicketId,
    RootCause,
    Workaround,
    KnownError,
    Keywords,
    UpdatedAt,
}
