//! Test support for sluice: private MariaDB servers (via `scripts/mariadb-test-server.sh`)
//! and a deterministic fake `users` workload.

mod server;
pub mod users;

pub use server::{connect, MariaDb};
