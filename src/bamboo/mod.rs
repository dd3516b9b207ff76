//! Everything HTTP: the client, the JSON types of Bamboo's API, credentials and retry policy.
//! Only this module imports reqwest.

mod access;
mod answers;
mod auth;
mod build_writes;
mod client;
pub mod journal;
mod reader;
mod reads;
mod retry;
mod server_clock;
pub mod transport;
pub mod types;
mod write_turn;

pub use auth::{Credentials, Secret};
pub use client::{BambooClient, BambooError, ClientConfig, Tally, WriteError, encode_segment};
pub use reader::BuildReader;
pub use retry::RetryPolicy;
pub use server_clock::ServerTime;
pub use write_turn::{TurnError, WriteTurn};
