//! Integration tests through the real binary and the public library API.

pub mod common;
mod config;
mod ledger;
mod pty;
mod theory;
mod training;
mod zoo;
