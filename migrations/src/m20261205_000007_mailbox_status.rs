//! Each mailbox's poller as `helpdeskd status` shows it: which daemon polls
//! it, whether it is connected, when mail last came and the last error.
//!
//! Written by the poller holding the mailbox (on connect, on an error, after
//! a sync that brought mail), read by `status` from any machine.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MailboxStatus::Table)
                    .col(text(MailboxStatus::Mailbox).primary_key())
                    .col(text(MailboxStatus::Daemon))
                    .col(boolean(MailboxStatus::Connected))
                    .col(timestamp_with_time_zone_null(MailboxStatus::ConnectedAt))
                    .col(timestamp_with_time_zone_null(MailboxStatus::LastMailAt))
                    .col(text_null(MailboxStatus::LastError))
                    .col(timestamp_with_time_zone_null(MailboxStatus::LastErrorAt))
                    .col(timestamp_with_time_zone(MailboxStatus::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MailboxStatus::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum MailboxStatus {
    Table,
    Mailbox,
    Daemon,
    Connected,
    ConnectedAt,
    LastMailAt,
    LastError,
    LastErrorAt,
    UpdatedAt,
}
