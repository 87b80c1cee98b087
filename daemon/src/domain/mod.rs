//! The pure domain core: plain data and plain functions, no I/O, no clock.
//!
//! Everything here is decided from its arguments alone, so it is tested with
//! table tests and corpus fixtures, never with a server.

pub mod ack;
pub mod change;
pub mod changes;
pub mod classify;
pub mod commands;
pub mod conversation;
pub mod intake;
pub mod mail;
pub mod outage;
pub mod problem;
pub mod quote;
pub mod release;
pub mod render;
pub mod satisfaction;
pub mod schedule;
pub mod sla;
pub mod staff;
pub mod supplier;
pub mod threading;
pub mod ticket;
pub mod token;
pub mod trust;
