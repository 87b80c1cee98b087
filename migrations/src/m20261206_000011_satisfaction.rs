//! Customer satisfaction: the rating requests the desk sent when a ticket
//! was resolved (one per resolution and customer, keyed by the request's
//! Message-ID, which the customer's answer threads to) and the ratings the
//! customers answered with. Both carry the assignee and the service as
//! they were at the resolution, so the figures per staff member and per
//! service do not move when a ticket is reassigned later.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SatisfactionRequests::Table)
                    .col(text(SatisfactionRequests::MessageId).primary_key())
                    .col(big_integer(SatisfactionRequests::TicketId))
                    .col(big_integer(SatisfactionRequests::ContactId))
                    .col(timestamp_with_time_zone(SatisfactionRequests::AskedAt))
                    .col(string_null(SatisfactionRequests::Assignee))
                    .col(string_null(SatisfactionRequests::Service))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("satisfaction_requests_ticket")
                    .table(SatisfactionRequests::Table)
                    .col(SatisfactionRequests::TicketId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Ratings::Table)
                    .col(big_pk_auto(Ratings::Id))
                    .col(big_integer(Ratings::TicketId))
                    .col(big_integer(Ratings::ContactId))
                    .col(text(Ratings::RequestMessageId))
                    .col(small_integer(Ratings::Score))
                    .col(text(Ratings::Comment))
                    .col(timestamp_with_time_zone(Ratings::RatedAt))
                    .col(string_null(Ratings::Assignee))
                    .col(string_null(Ratings::Service))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("ratings_ticket", Ratings::TicketId),
            ("ratings_rated_at", Ratings::RatedAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Ratings::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Ratings::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(SatisfactionRequests::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SatisfactionRequests {
    Table,
    MessageId,
    TicketId,
    ContactId,
    AskedAt,
    Assignee,
    Service,
}

#[derive(DeriveIden)]
enum Ratings {
    Table,
    Id,
    TicketId,
    ContactId,
    RequestMessageId,
    Score,
    Comment,
    RatedAt,
    Assignee,
    Service,
}
