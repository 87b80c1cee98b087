//! Service level, supplier and scheduling records (ISO/IEC 20000 service
//! level management, supplier management, service reporting):
//!
//! - on tickets: the service, the SLA due instants, the first response, and
//!   `sla_next_at`, the next instant the SLA job must look at the ticket
//!   (indexed, so a run reads only the tickets that are due);
//! - `sla_pauses`: when a ticket waited for the customer;
//! - `sla_events`: warnings and breaches, unique per ticket, target and kind,
//!   so each is sent once;
//! - `supplier_escalations`: a ticket handed to a supplier, and when the
//!   supplier answered and the ticket was resolved;
//! - `job_runs`: one row per job and slot with a lease, so a slot runs once
//!   across daemons sharing a database; `job_state`: when a job was first seen.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let ticket_columns = [
            string_null(Tickets::Service),
            timestamp_with_time_zone_null(Tickets::ResponseDueAt),
            timestamp_with_time_zone_null(Tickets::ResolutionDueAt),
            timestamp_with_time_zone_null(Tickets::RespondedAt),
            timestamp_with_time_zone_null(Tickets::SlaNextAt),
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
        manager
            .create_index(
                Index::create()
                    .name("idx_tickets_sla_next_at")
                    .table(Tickets::Table)
                    .col(Tickets::SlaNextAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SlaPauses::Table)
                    .col(big_pk_auto(SlaPauses::Id))
                    .col(big_integer(SlaPauses::TicketId))
                    .col(timestamp_with_time_zone(SlaPauses::StartedAt))
                    .col(timestamp_with_time_zone_null(SlaPauses::EndedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sla_pauses_ticket")
                    .table(SlaPauses::Table)
                    .col(SlaPauses::TicketId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SlaEvents::Table)
                    .col(big_pk_auto(SlaEvents::Id))
                    .col(big_integer(SlaEvents::TicketId))
                    .col(string(SlaEvents::Target))
                    .col(string(SlaEvents::Kind))
                    .col(timestamp_with_time_zone(SlaEvents::DueAt))
                    .col(timestamp_with_time_zone(SlaEvents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sla_events_once")
                    .table(SlaEvents::Table)
                    .col(SlaEvents::TicketId)
                    .col(SlaEvents::Target)
                    .col(SlaEvents::Kind)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SupplierEscalations::Table)
                    .col(big_pk_auto(SupplierEscalations::Id))
                    .col(big_integer(SupplierEscalations::TicketId))
                    .col(string(SupplierEscalations::Supplier))
                    .col(text(SupplierEscalations::Note))
                    .col(timestamp_with_time_zone(SupplierEscalations::EscalatedAt))
                    .col(timestamp_with_time_zone_null(
                        SupplierEscalations::RespondedAt,
                    ))
                    .col(timestamp_with_time_zone_null(
                        SupplierEscalations::ResolvedAt,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_supplier_escalations_supplier")
                    .table(SupplierEscalations::Table)
                    .col(SupplierEscalations::Supplier)
                    .col(SupplierEscalations::EscalatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(JobRuns::Table)
                    .col(big_pk_auto(JobRuns::Id))
                    .col(string(JobRuns::Job))
                    .col(timestamp_with_time_zone(JobRuns::Slot))
                    .col(string(JobRuns::Status))
                    .col(string(JobRuns::Owner))
                    .col(timestamp_with_time_zone(JobRuns::LeaseUntil))
                    .col(timestamp_with_time_zone(JobRuns::StartedAt))
                    .col(timestamp_with_time_zone_null(JobRuns::FinishedAt))
                    .col(text_null(JobRuns::Outcome))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_job_runs_slot")
                    .table(JobRuns::Table)
                    .col(JobRuns::Job)
                    .col(JobRuns::Slot)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(JobState::Table)
                    .col(string(JobState::Job).primary_key())
                    .col(timestamp_with_time_zone(JobState::FirstSeen))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            JobState::Table.into_iden(),
            JobRuns::Table.into_iden(),
            SupplierEscalations::Table.into_iden(),
            SlaEvents::Table.into_iden(),
            SlaPauses::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_tickets_sla_next_at")
                    .table(Tickets::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Tickets::Service,
            Tickets::ResponseDueAt,
            Tickets::ResolutionDueAt,
            Tickets::RespondedAt,
            Tickets::SlaNextAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tickets::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Service,
    ResponseDueAt,
    ResolutionDueAt,
    RespondedAt,
    SlaNextAt,
}

#[derive(DeriveIden)]
enum SlaPauses {
    Table,
    Id,
    TicketId,
    StartedAt,
    EndedAt,
}

#[derive(DeriveIden)]
enum SlaEvents {
    Table,
    Id,
    TicketId,
    Target,
    Kind,
    DueAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SupplierEscalations {
    Table,
    Id,
    TicketId,
    Supplier,
    Note,
    EscalatedAt,
    RespondedAt,
    ResolvedAt,
}

#[derive(DeriveIden)]
enum JobRuns {
    Table,
    Id,
    Job,
    Slot,
    Status,
    Owner,
    LeaseUntil,
    StartedAt,
    FinishedAt,
    Outcome,
}

#[derive(DeriveIden)]
enum JobState {
    Table,
    Job,
    FirstSeen,
}
