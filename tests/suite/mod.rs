//! Integration tests through the real binary and the public library API.

pub mod common;
mod config;
mod training;
mod zoo;
