//! End-to-end tests of helpdeskd against a real mail stack (Dovecot and
//! OpenSMTPD on loopback) and real databases (SQLite and PostgreSQL). One
//! test binary, so the suite links once.

mod harness;

mod changes;
mod cli;
mod conversation;
mod corpus;
mod memory;
mod metrics;
mod oauth;
mod outages;
mod plugins;
mod poison;
mod problems;
mod releases;
mod report;
mod resilience;
mod satisfaction;
mod service_levels;
mod several;
mod staff;
