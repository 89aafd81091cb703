//! Test support for sluice: private MariaDB servers (via `scripts/mariadb-test-server.sh`),
//! a deterministic fake `users` workload, a TCP proxy that fails on demand ([`FaultProxy`]),
//! and an HTTP proxy that makes an AWS server throttle and fail entries ([`AwsFaultProxy`]).

mod aws_faults;
mod proxy;
mod server;
pub mod users;

pub use aws_faults::AwsFaultProxy;
pub use proxy::FaultProxy;
pub use server::{connect, MariaDb};
