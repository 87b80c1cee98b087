//! A release's record as its row stores it, for the ingest writer and the
//! settling of a deploy alike.

use crate::domain::release::{Record, Window};
use crate::error::{Error, Result};
use crate::store::entity::release;

/// The record of a `releases` row; an unknown state is an error naming it.
pub fn release_record(row: &release::Model) -> Result<Record> {
    Ok(Record {
        state: row.state.parse().map_err(Error::Invalid)?,
        window: match (row.window_start, row.window_end) {
            (Some(start), Some(end)) => Some(Window {
                start,
                end,
                zone: row.window_zone.clone().unwrap_or_else(|| "UTC".into()),
            }),
            _ => None,
        },
        vetoes: row.vetoes.clone(),
        deployed_at: row.deployed_at,
    })
}
