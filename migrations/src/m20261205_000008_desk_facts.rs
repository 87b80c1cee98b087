//! Facts the daemons of one desk must agree on, recorded by the first one.
//!
//! Today one fact: the fingerprint of the reply-token secret. Every daemon
//! of a desk must sign and verify with the same secret, or a staff reply to
//! a mail sent by one daemon is refused as forged by another; comparing
//! fingerprints at start turns that silent failure into a clear refusal.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeskFacts::Table)
                    .col(text(DeskFacts::Name).primary_key())
                    .col(text(DeskFacts::Value))
                    .col(text(DeskFacts::RecordedBy))
                    .col(timestamp_with_time_zone(DeskFacts::RecordedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(DeskFacts::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum DeskFacts {
    Table,
    Name,
    Value,
    RecordedBy,
    RecordedAt,
}
