use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written as `500ms`, `1s`, `2m` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (n, unit) = number_and_unit(s).ok_or_else(|| format!("invalid duration `{s}`: expected e.g. \"500ms\", \"1s\", \"2m\""))?;
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            _ => return Err(format!("invalid duration `{s}`: unit must be ms, s, m or h")),
        };
        Ok(Self(d))
    }
}

/// `"16MiB"` → `(16, "MiB")`: the leading integer and the unit after it (spaces allowed).
pub(super) fn number_and_unit(s: &str) -> Option<(u64, &str)> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    Some((num.parse().ok()?, unit.trim()))
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}
