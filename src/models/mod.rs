//! Networks the lab trains, each built deterministically from the config seed.

pub mod activation;
pub mod init;
pub mod mlp;

pub use mlp::Mlp;
