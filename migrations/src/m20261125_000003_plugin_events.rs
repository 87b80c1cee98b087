//! The plugin event outbox and plugin errors.
//!
//! `events` is written in the same transaction as the change that caused the
//! event (ingest, a staff command, a plugin's own actions) and drained by the
//! plugin dispatcher in id order, one event per ticket at a time.
//! `plugin_errors` keeps every failed call and every refused action, for
//! `helpdeskd plugins list` and `plugins failed`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(big_pk_auto(Events::Id))
                    .col(big_integer_null(Events::TicketId))
                    .col(string(Events::Hook))
                    .col(text(Events::Payload))
                    // pending, done or failed
                    .col(string(Events::Status))
                    .col(integer(Events::Attempts).default(0))
                    .col(text_null(Events::LastError))
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .col(timestamp_with_time_zone(Events::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Events::DoneAt))
                    // The plugin whose actions caused the event; it is not
                    // sent to that plugin, and causes no further events.
                    .col(string_null(Events::Origin))
                    // JSON: plugins done with the event, failures per plugin.
                    .col(text_null(Events::Delivery))
                    // JSON: the vetoes of a gate event.
                    .col(text_null(Events::Vetoes))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_status_id")
                    .table(Events::Table)
                    .col(Events::Status)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PluginErrors::Table)
                    .col(big_pk_auto(PluginErrors::Id))
                    .col(string(PluginErrors::Plugin))
                    .col(big_integer_null(PluginErrors::EventId))
                    .col(big_integer_null(PluginErrors::TicketId))
                    .col(text(PluginErrors::Error))
                    .col(timestamp_with_time_zone(PluginErrors::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_plugin_errors_plugin")
                    .table(PluginErrors::Table)
                    .col(PluginErrors::Plugin)
                    .col(PluginErrors::Id)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [PluginErrors::Table.into_iden(), Events::Table.into_iden()] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    TicketId,
    Hook,
    Payload,
    Status,
    Attempts,
    LastError,
    CreatedAt,
    NextAttemptAt,
    DoneAt,
    Origin,
    Delivery,
    Vetoes,
}

#[derive(DeriveIden)]
enum PluginErrors {
    Table,
    Id,
    Plugin,
    EventId,
    TicketId,
    Error,
    CreatedAt,
}
