//! Releases: one row per release ticket (`REL-…`): its state (planned,
//! deploying, vetoed, deployed), planned window, the reasons of its last
//! veto and when it was deployed. Its changes are the change tickets
//! linked to it with the reason "release".

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Releases::Table)
                    .col(big_integer(Releases::TicketId).primary_key())
                    .col(string(Releases::State))
                    .col(timestamp_with_time_zone_null(Releases::WindowStart))
                    .col(timestamp_with_time_zone_null(Releases::WindowEnd))
                    .col(string_null(Releases::WindowZone))
                    .col(text(Releases::Vetoes).default(""))
                    .col(timestamp_with_time_zone_null(Releases::DeployedAt))
                    .col(timestamp_with_time_zone(Releases::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_releases_state")
                    .table(Releases::Table)
                    .col(Releases::State)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Releases::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Releases {
    Table,
    TicketId,
    State,
    WindowStart,
    WindowEnd,
    WindowZone,
    Vetoes,
    DeployedAt,
    UpdatedAt,
}
