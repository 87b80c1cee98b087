//! Large raw mails in pieces.
//!
//! A mail larger than one piece keeps its first piece in `messages.raw` and
//! the rest here, in order from `seq` 1: a database takes a bound value
//! whole and copies it several times on the way to disk, so a 60 MB mail
//! written as one value needed four times its size in memory.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MessageRawPieces::Table)
                    .col(big_integer(MessageRawPieces::MessageId))
                    .col(integer(MessageRawPieces::Seq))
                    .col(blob(MessageRawPieces::Bytes))
                    .primary_key(
                        Index::create()
                            .col(MessageRawPieces::MessageId)
                            .col(MessageRawPieces::Seq),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MessageRawPieces::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum MessageRawPieces {
    Table,
    MessageId,
    Seq,
    Bytes,
}
