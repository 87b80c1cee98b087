//! Facts the daemons of one desk agree on (`desk_facts`): the first daemon
//! records one, the others compare theirs with it.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};

use super::Store;
use super::entity::desk_fact;
use crate::error::Result;

/// A recorded fact: its value, who recorded it and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fact {
    pub value: String,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

impl From<desk_fact::Model> for Fact {
    fn from(m: desk_fact::Model) -> Fact {
        Fact {
            value: m.value,
            recorded_by: m.recorded_by,
            recorded_at: m.recorded_at,
        }
    }
}

impl Store {
    /// The recorded fact `name`, if any.
    pub async fn fact(&self, name: &str) -> Result<Option<Fact>> {
        Ok(desk_fact::Entity::find_by_id(name.to_string())
            .one(self.conn())
            .await?
            .map(Fact::from))
    }

    /// Records `fact` unless one is recorded already (the first daemon
    /// wins, whatever the order), and returns the recorded one.
    pub async fn record_fact_once(&self, name: &str, fact: Fact) -> Result<Fact> {
        desk_fact::Entity::insert(active(name, fact.clone()))
            .on_conflict(
                OnConflict::column(desk_fact::Column::Name)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(self.conn())
            .await?;
        Ok(self.fact(name).await?.unwrap_or(fact))
    }

    /// Records `fact`, replacing any recorded one.
    pub async fn replace_fact(&self, name: &str, fact: Fact) -> Result<()> {
        desk_fact::Entity::insert(active(name, fact))
            .on_conflict(
                OnConflict::column(desk_fact::Column::Name)
                    .update_columns([
                        desk_fact::Column::Value,
                        desk_fact::Column::RecordedBy,
                        desk_fact::Column::RecordedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(self.conn())
            .await?;
        Ok(())
    }
}

fn active(name: &str, f: Fact) -> desk_fact::ActiveModel {
    desk_fact::ActiveModel {
        name: Set(name.to_string()),
        value: Set(f.value),
        recorded_by: Set(f.recorded_by),
        recorded_at: Set(f.recorded_at),
    }
}
