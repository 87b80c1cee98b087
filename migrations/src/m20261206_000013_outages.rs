//! Outages: a configuration item down, recorded on an incident by staff
//! (`/outage start ITEM`, `/outage end`), for the availability per service
//! of the service report.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Outages::Table)
                    .col(big_pk_auto(Outages::Id))
                    .col(big_integer(Outages::TicketId))
                    .col(string(Outages::Item))
                    .col(timestamp_with_time_zone(Outages::StartedAt))
                    .col(timestamp_with_time_zone_null(Outages::EndedAt))
                    .col(string(Outages::StartedBy))
                    .col(string_null(Outages::EndedBy))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outages_ticket")
                    .table(Outages::Table)
                    .col(Outages::TicketId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outages::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Outages {
    Table,
    Id,
    TicketId,
    Item,
    StartedAt,
    EndedAt,
    StartedBy,
    EndedBy,
}
