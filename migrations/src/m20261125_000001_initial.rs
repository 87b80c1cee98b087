//! The foundation schema: contacts, tickets, participants, links, messages,
//! attachments, quarantine, mailbox watermarks, the outbox and id counters.
//!
//! Ticket and message ids are allocated by the application from `counters`
//! (one `UPDATE … RETURNING` per batch), so a whole batch of mails can be
//! written with multi-row inserts.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Counters::Table)
                    .col(string(Counters::Name).primary_key())
                    .col(big_integer(Counters::Value))
                    .to_owned(),
            )
            .await?;
        for name in ["ticket", "message", "contact"] {
            manager
                .exec_stmt(
                    Query::insert()
                        .into_table(Counters::Table)
                        .columns([Counters::Name, Counters::Value])
                        .values_panic([name.into(), 0i64.into()])
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Contacts::Table)
                    .col(big_integer(Contacts::Id).primary_key())
                    .col(string_uniq(Contacts::Email))
                    .col(string(Contacts::Name))
                    .col(timestamp_with_time_zone(Contacts::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Tickets::Table)
                    .col(big_integer(Tickets::Id).primary_key())
                    .col(string_uniq(Tickets::Number))
                    .col(string(Tickets::Kind))
                    .col(text(Tickets::Subject))
                    .col(string(Tickets::Status))
                    .col(string(Tickets::Priority))
                    .col(big_integer(Tickets::CustomerId))
                    .col(string(Tickets::Mailbox))
                    .col(timestamp_with_time_zone(Tickets::CreatedAt))
                    .col(timestamp_with_time_zone(Tickets::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Tickets::Table, Tickets::CustomerId)
                            .to(Contacts::Table, Contacts::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_tickets_status")
                    .table(Tickets::Table)
                    .col(Tickets::Status)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Participants::Table)
                    .col(big_integer(Participants::TicketId))
                    .col(big_integer(Participants::ContactId))
                    .col(string(Participants::Role))
                    .primary_key(
                        Index::create()
                            .col(Participants::TicketId)
                            .col(Participants::ContactId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Participants::Table, Participants::TicketId)
                            .to(Tickets::Table, Tickets::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Participants::Table, Participants::ContactId)
                            .to(Contacts::Table, Contacts::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TicketLinks::Table)
                    .col(big_integer(TicketLinks::TicketId))
                    .col(big_integer(TicketLinks::OtherId))
                    .col(string(TicketLinks::Reason))
                    .primary_key(
                        Index::create()
                            .col(TicketLinks::TicketId)
                            .col(TicketLinks::OtherId),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(big_integer(Messages::Id).primary_key())
                    .col(big_integer(Messages::TicketId))
                    .col(string(Messages::Direction))
                    .col(string_null(Messages::MessageId))
                    .col(string_uniq(Messages::DedupKey))
                    .col(text(Messages::InReplyTo))
                    .col(text(Messages::References))
                    .col(text(Messages::FromAddr))
                    .col(text(Messages::ToAddrs))
                    .col(text(Messages::CcAddrs))
                    .col(text(Messages::Subject))
                    .col(text(Messages::BodyText))
                    .col(string(Messages::Visibility))
                    .col(string(Messages::Class))
                    .col(string(Messages::ThreadedBy))
                    .col(string_null(Messages::Mailbox))
                    .col(big_integer_null(Messages::Uid))
                    .col(text(Messages::Warnings))
                    .col(timestamp_with_time_zone(Messages::CreatedAt))
                    .col(blob(Messages::Raw))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Messages::Table, Messages::TicketId)
                            .to(Tickets::Table, Tickets::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_message_id")
                    .table(Messages::Table)
                    .col(Messages::MessageId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_ticket")
                    .table(Messages::Table)
                    .col(Messages::TicketId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Attachments::Table)
                    .col(big_pk_auto(Attachments::Id))
                    .col(big_integer(Attachments::MessageId))
                    .col(integer(Attachments::Part))
                    .col(text(Attachments::Filename))
                    .col(string(Attachments::ContentType))
                    .col(big_integer(Attachments::Size))
                    .col(string(Attachments::Sha256))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Attachments::Table, Attachments::MessageId)
                            .to(Messages::Table, Messages::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_attachments_message")
                    .table(Attachments::Table)
                    .col(Attachments::MessageId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Quarantine::Table)
                    .col(big_pk_auto(Quarantine::Id))
                    .col(string_uniq(Quarantine::DedupKey))
                    .col(string(Quarantine::Mailbox))
                    .col(big_integer_null(Quarantine::Uid))
                    .col(text(Quarantine::Reason))
                    .col(big_integer(Quarantine::Size))
                    .col(timestamp_with_time_zone(Quarantine::CreatedAt))
                    .col(blob(Quarantine::Raw))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MailboxState::Table)
                    .col(string(MailboxState::Mailbox).primary_key())
                    .col(big_integer(MailboxState::UidValidity))
                    .col(big_integer(MailboxState::LastUid))
                    .col(timestamp_with_time_zone(MailboxState::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(big_pk_auto(Outbox::Id))
                    .col(big_integer_null(Outbox::TicketId))
                    .col(string(Outbox::MessageId))
                    .col(string(Outbox::Kind))
                    .col(string(Outbox::EnvelopeFrom))
                    .col(text(Outbox::Recipients))
                    .col(string(Outbox::Status))
                    .col(integer(Outbox::Attempts))
                    .col(timestamp_with_time_zone(Outbox::NextAttemptAt))
                    .col(text_null(Outbox::LastError))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(timestamp_with_time_zone_null(Outbox::SentAt))
                    .col(blob(Outbox::Raw))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_due")
                    .table(Outbox::Table)
                    .col(Outbox::Status)
                    .col(Outbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;

        // PostgreSQL compresses large values with pglz by default, which
        // costs most of its CPU on raw mail; lz4 is several times cheaper.
        // Servers built without lz4 keep the default.
        if manager.get_database_backend() == sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "DO $$ BEGIN
                       IF EXISTS (SELECT 1 FROM pg_settings
                                  WHERE name = 'default_toast_compression'
                                    AND 'lz4' = ANY(enumvals)) THEN
                         ALTER TABLE messages ALTER COLUMN raw SET COMPRESSION lz4;
                         ALTER TABLE messages ALTER COLUMN body_text SET COMPRESSION lz4;
                         ALTER TABLE quarantine ALTER COLUMN raw SET COMPRESSION lz4;
                         ALTER TABLE outbox ALTER COLUMN raw SET COMPRESSION lz4;
                       END IF;
                     END $$",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Outbox::Table.into_iden(),
            MailboxState::Table.into_iden(),
            Quarantine::Table.into_iden(),
            Attachments::Table.into_iden(),
            Messages::Table.into_iden(),
            TicketLinks::Table.into_iden(),
            Participants::Table.into_iden(),
            Tickets::Table.into_iden(),
            Contacts::Table.into_iden(),
            Counters::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Counters {
    Table,
    Name,
    Value,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
    Email,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Id,
    Number,
    Kind,
    Subject,
    Status,
    Priority,
    CustomerId,
    Mailbox,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Participants {
    Table,
    TicketId,
    ContactId,
    Role,
}

#[derive(DeriveIden)]
enum TicketLinks {
    Table,
    TicketId,
    OtherId,
    Reason,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    TicketId,
    Direction,
    MessageId,
    DedupKey,
    InReplyTo,
    References,
    FromAddr,
    ToAddrs,
    CcAddrs,
    Subject,
    BodyText,
    Visibility,
    Class,
    ThreadedBy,
    Mailbox,
    Uid,
    Warnings,
    CreatedAt,
    Raw,
}

#[derive(DeriveIden)]
enum Attachments {
    Table,
    Id,
    MessageId,
    Part,
    Filename,
    ContentType,
    Size,
    Sha256,
}

#[derive(DeriveIden)]
enum Quarantine {
    Table,
    Id,
    DedupKey,
    Mailbox,
    Uid,
    Reason,
    Size,
    CreatedAt,
    Raw,
}

#[derive(DeriveIden)]
enum MailboxState {
    Table,
    Mailbox,
    UidValidity,
    LastUid,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    TicketId,
    MessageId,
    Kind,
    EnvelopeFrom,
    Recipients,
    Status,
    Attempts,
    NextAttemptAt,
    LastError,
    CreatedAt,
    SentAt,
    Raw,
}
