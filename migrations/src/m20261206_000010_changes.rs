//! Configuration items on tickets and change management (ISO/IEC 20000
//! configuration and change management):
//!
//! - `ticket_items`: the configuration items a ticket names (`/ci NAME`),
//!   one row per ticket and item;
//! - `changes`: one row per ticket of kind change: its state, risk,
//!   impact, window, the submission round with its board, approvers,
//!   quorum and deadline;
//! - `change_history`: what happened to a change, who did it, when, and the
//!   proof (a staff command, an approval with its token, a refused answer
//!   with the reason): the audit trail `helpdeskd change show` prints.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TicketItems::Table)
                    .col(big_integer(TicketItems::TicketId))
                    .col(string(TicketItems::Item))
                    .col(string(TicketItems::AddedBy))
                    .col(timestamp_with_time_zone(TicketItems::AddedAt))
                    .primary_key(
                        Index::create()
                            .col(TicketItems::TicketId)
                            .col(TicketItems::Item),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Changes::Table)
                    .col(big_integer(Changes::TicketId).primary_key())
                    .col(string(Changes::State))
                    .col(string_null(Changes::Risk))
                    .col(text_null(Changes::Impact))
                    .col(timestamp_with_time_zone_null(Changes::WindowStart))
                    .col(timestamp_with_time_zone_null(Changes::WindowEnd))
                    .col(string_null(Changes::WindowZone))
                    .col(integer(Changes::Round))
                    .col(string_null(Changes::Board))
                    .col(text(Changes::Approvers))
                    .col(string(Changes::Quorum))
                    .col(timestamp_with_time_zone_null(Changes::SubmittedAt))
                    .col(string_null(Changes::SubmittedBy))
                    .col(timestamp_with_time_zone_null(Changes::DeadlineAt))
                    .col(text(Changes::Flags))
                    .col(timestamp_with_time_zone(Changes::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_changes_state")
                    .table(Changes::Table)
                    .col(Changes::State)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ChangeHistory::Table)
                    .col(big_pk_auto(ChangeHistory::Id))
                    .col(big_integer(ChangeHistory::TicketId))
                    .col(integer(ChangeHistory::Round))
                    .col(timestamp_with_time_zone(ChangeHistory::At))
                    .col(string(ChangeHistory::Actor))
                    .col(string(ChangeHistory::Action))
                    .col(text(ChangeHistory::Detail))
                    .col(text(ChangeHistory::Proof))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_change_history_ticket")
                    .table(ChangeHistory::Table)
                    .col(ChangeHistory::TicketId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            ChangeHistory::Table.into_iden(),
            Changes::Table.into_iden(),
            TicketItems::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum TicketItems {
    Table,
    TicketId,
    Item,
    AddedBy,
    AddedAt,
}

#[derive(DeriveIden)]
enum Changes {
    Table,
    TicketId,
    State,
    Risk,
    Impact,
    WindowStart,
    WindowEnd,
    WindowZone,
    Round,
    Board,
    Approvers,
    Quorum,
    SubmittedAt,
    SubmittedBy,
    DeadlineAt,
    Flags,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ChangeHistory {
    Table,
    Id,
    TicketId,
    Round,
    At,
    Actor,
    Action,
    Detail,
    Proof,
}
