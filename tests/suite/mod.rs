//! Integration tests through the real binary and the public library API.

pub mod common;
mod compressor;
mod config;
mod grid;
mod ledger;
mod lesion;
mod plot;
mod portable;
mod property;
mod pty;
mod robust;
mod sweep;
mod theory;
mod training;
mod verifier;
mod zoo;
