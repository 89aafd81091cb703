//! Test support for sluice: private MariaDB servers (via `scripts/mariadb-test-server.sh`),
//! a deterministic fake `users` workload, and a TCP proxy that fails on demand ([`FaultProxy`]).

mod proxy;
mod server;
pub mod users;

pub use proxy::FaultProxy;
pub use server::{connect, MariaDb};
