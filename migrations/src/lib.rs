//! Database schema of helpdeskd, as sea-orm migrations.
//!
//! One file per migration; `DeriveMigrationName` names each after its file, so
//! a released migration file is never renamed or edited, only followed by a new one.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_initial;
mod m20261125_000002_staff;
mod m20261125_000003_plugin_events;
mod m20261125_000004_service_levels;
mod m20261204_000005_raw_pieces;
mod m20261204_000006_ticket_keys;
mod m20261205_000007_mailbox_status;
mod m20261205_000008_desk_facts;
mod m20261206_000009_problems;
mod m20261206_000010_changes;
mod m20261206_000011_satisfaction;
mod m20261206_000012_releases;
mod m20261206_000013_outages;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_initial::Migration),
            Box::new(m20261125_000002_staff::Migration),
            Box::new(m20261125_000003_plugin_events::Migration),
            Box::new(m20261125_000004_service_levels::Migration),
            Box::new(m20261204_000005_raw_pieces::Migration),
            Box::new(m20261204_000006_ticket_keys::Migration),
            Box::new(m20261205_000007_mailbox_status::Migration),
            Box::new(m20261205_000008_desk_facts::Migration),
            Box::new(m20261206_000009_problems::Migration),
            Box::new(m20261206_000010_changes::Migration),
            Box::new(m20261206_000011_satisfaction::Migration),
            Box::new(m20261206_000012_releases::Migration),
            Box::new(m20261206_000013_outages::Migration),
        ]
    }
}
