//! The reference `users` table in process: its schema and the rows of the testkit's
//! deterministic generator, as the source would decode them (the in-process benches' input).
use std::sync::Arc;

use sluice_core::schema::{Column, SchemaRef, SqlType, TableId, TableSchema};
use sluice_core::value::{Row, Value};
use sluice_testkit::users::generate;

/// `bench.users` with the generator's columns; `userid` is the key.
pub fn schema() -> SchemaRef {
    let int = SqlType::Int { bits: 32, unsigned: false };
    let names = ["userid", "username", "firstname", "lastname", "city", "state", "email", "phone", "numberofdocuments"];
    Arc::new(TableSchema {
        id: TableId::new("bench", "users"),
        columns: names
            .iter()
            .map(|n| Column {
                name: (*n).into(),
                ty: if ["userid", "numberofdocuments"].contains(n) { int.clone() } else { SqlType::Text },
                nullable: true,
            })
            .collect(),
        key: vec![0],
        configured_key: false,
    })
}

/// `n` generated users rows (seed 42), in [`schema`]'s column order.
pub fn rows(n: usize) -> impl Iterator<Item = Row> {
    generate(n, 42).map(|u| {
        vec![
            Value::Int(i64::from(u.userid)),
            Value::Text(u.username),
            Value::Text(u.firstname),
            Value::Text(u.lastname),
            Value::Text(u.city),
            Value::Text(u.state),
            Value::Text(u.email),
            Value::Text(u.phone),
            Value::Int(i64::from(u.numberofdocuments)),
        ]
    })
}
