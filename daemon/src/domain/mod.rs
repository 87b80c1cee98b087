//! The pure domain core: plain data and plain functions, no I/O, no clock.
//!
//! Everything here is decided from its arguments alone, so it is tested with
//! table tests and corpus fixtures, never with a server.

pub mod ack;
pub mod classify;
pub mod mail;
pub mod threading;
pub mod ticket;
