//! `[[mask]]`, `[detect]` and `[mask_key]`: which columns are PII and how they are protected.
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

use super::pattern::glob;

/// A column pattern: `db.table.column`, `table.column` (any database) or `column` (anywhere);
/// each part may use `*` and `?` globs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnPattern {
    db: Option<String>,
    table: Option<String>,
    column: String,
    text: String,
}

impl ColumnPattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) || parts.len() > 3 {
            return Err(format!(
                "invalid column pattern `{s}`: expected db.table.column, table.column or column, e.g. \"shop.users.email\" or \"*.phone\""
            ));
        }
        let owned = |i: usize| parts.get(i).map(|p| p.to_string());
        let (db, table, column) = match parts.len() {
            3 => (owned(0), owned(1), parts[2]),
            2 => (None, owned(0), parts[1]),
            _ => (None, None, parts[0]),
        };
        Ok(Self { db, table, column: column.to_string(), text: s.to_string() })
    }

    pub fn matches(&self, db: &str, table: &str, column: &str) -> bool {
        let part = |p: &Option<String>, s: &str| p.as_ref().is_none_or(|p| glob(p.as_bytes(), s.as_bytes()));
        part(&self.db, db) && part(&self.table, table) && glob(self.column.as_bytes(), column.as_bytes())
    }
}

impl std::fmt::Display for ColumnPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ColumnPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// How a masked value is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskMethod {
    /// "########", like the reference pipeline's Glue job.
    Redact,
    /// Keyed HMAC-SHA256, hex: the same input gives the same output, so joins and merges work.
    Hash,
    /// Keep the last `keep` letters/digits, star the others, keep punctuation: `(***) ***-1234`.
    Partial,
    /// First letter of the local part and the domain: `j***@example.com`.
    Email,
    /// NULL (the column stays, nullable).
    Null,
    /// The column is removed.
    Drop,
}

impl MaskMethod {
    /// The name used in the config.
    pub fn name(self) -> &'static str {
        match self {
            MaskMethod::Redact => "redact",
            MaskMethod::Hash => "hash",
            MaskMethod::Partial => "partial",
            MaskMethod::Email => "email",
            MaskMethod::Null => "null",
            MaskMethod::Drop => "drop",
        }
    }

    pub fn needs_key(self) -> bool {
        self == MaskMethod::Hash
    }
}

/// One `[[mask]]` rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskRule {
    pub columns: Vec<ColumnPattern>,
    pub method: MaskMethod,
    /// For `partial`: how many trailing letters/digits stay visible.
    pub keep: Option<u32>,
}

/// Content-based PII classes, named like AWS Glue's sensitive-data detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Entity {
    Email,
    PhoneNumber,
    CreditCard,
    UsSsn,
    IpAddress,
    Iban,
}

impl Entity {
    pub const ALL: [Entity; 6] = [Entity::Email, Entity::PhoneNumber, Entity::CreditCard, Entity::UsSsn, Entity::IpAddress, Entity::Iban];

    pub fn name(self) -> &'static str {
        match self {
            Entity::Email => "EMAIL",
            Entity::PhoneNumber => "PHONE_NUMBER",
            Entity::CreditCard => "CREDIT_CARD",
            Entity::UsSsn => "US_SSN",
            Entity::IpAddress => "IP_ADDRESS",
            Entity::Iban => "IBAN",
        }
    }
}

/// `[detect]`: classify text columns by their content.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectConfig {
    #[serde(default = "all_entities")]
    pub entities: Vec<Entity>,
    #[serde(default = "redact")]
    pub action: MaskMethod,
    /// For `action = "partial"`.
    pub keep: Option<u32>,
    /// Non-empty values of a column examined before deciding.
    #[serde(default = "sample")]
    pub sample: u32,
    /// Share of sampled values that must match one entity for the column to be masked.
    #[serde(default = "threshold")]
    pub threshold: f64,
    /// Also mask matching spans inside free text and JSON values of columns not masked whole.
    #[serde(default)]
    pub spans: bool,
    /// Columns to examine (default: every text and JSON column).
    #[serde(default)]
    pub columns: Vec<ColumnPattern>,
    #[serde(default)]
    pub exclude: Vec<ColumnPattern>,
}

/// `[mask_key]`: the secret behind `hash`. Default: the SLUICE_MASK_KEY environment variable.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskKeyConfig {
    /// A file holding the key (trailing newline ignored); takes precedence over the variable.
    pub file: Option<PathBuf>,
}

/// The environment variable holding the masking key.
pub const MASK_KEY_ENV: &str = "SLUICE_MASK_KEY";
/// Keys shorter than this are refused.
pub const MIN_KEY_BYTES: usize = 16;

impl DetectConfig {
    pub fn examines(&self, db: &str, table: &str, column: &str) -> bool {
        (self.columns.is_empty() || self.columns.iter().any(|p| p.matches(db, table, column)))
            && !self.exclude.iter().any(|p| p.matches(db, table, column))
    }
}

impl<S: super::SourceSettings, K: super::SinkSettings> super::Config<S, K> {
    /// The masking key's bytes from `[mask_key] file`, else SLUICE_MASK_KEY (trailing whitespace
    /// ignored); `None` when neither is set. Length is checked by the caller.
    /// The sealer for snapshot positions (which hold key values, maybe PII) when masking is
    /// configured; `None` otherwise, or without a usable key (then no key column can be masked:
    /// the masker refuses that).
    pub fn snapshot_sealer(&self) -> Result<Option<crate::seal::Sealer>, String> {
        if !self.masks_anything() {
            return Ok(None);
        }
        let key = self.mask_key_bytes()?;
        Ok(key.filter(|k| k.len() >= MIN_KEY_BYTES).map(|k| crate::seal::Sealer::new(&k)))
    }

    pub fn mask_key_bytes(&self) -> Result<Option<Vec<u8>>, String> {
        let raw = match &self.mask_key.file {
            Some(path) => Some(
                std::fs::read(path).map_err(|e| format!("cannot read the masking key file {} ([mask_key] file): {e}", path.display()))?,
            ),
            None => std::env::var_os(MASK_KEY_ENV).filter(|v| !v.is_empty()).map(|v| v.into_encoded_bytes()),
        };
        Ok(raw.map(|mut b| {
            while b.last().is_some_and(|c| c.is_ascii_whitespace()) {
                b.pop();
            }
            b
        }))
    }
}

pub(super) fn validate(rules: &[MaskRule], detect: Option<&DetectConfig>) -> Result<(), String> {
    for (i, r) in rules.iter().enumerate() {
        let n = i + 1;
        if r.columns.is_empty() {
            return Err(format!("[[mask]] rule {n}: columns is empty: list columns such as \"shop.users.email\""));
        }
        check_keep(r.method, r.keep).map_err(|m| format!("[[mask]] rule {n}: {m}"))?;
    }
    if let Some(d) = detect {
        if d.entities.is_empty() {
            return Err("[detect] entities is empty: list entities such as [\"EMAIL\", \"PHONE_NUMBER\"] or remove [detect]".into());
        }
        if !(d.threshold > 0.0 && d.threshold <= 1.0) {
            return Err(format!("[detect] threshold = {} is out of range: use a share in (0, 1], e.g. 0.5", d.threshold));
        }
        if d.sample == 0 {
            return Err("[detect] sample = 0: give how many values to examine per column, e.g. 100".into());
        }
        check_keep(d.action, d.keep).map_err(|m| format!("[detect] {m}"))?;
    }
    Ok(())
}

fn check_keep(method: MaskMethod, keep: Option<u32>) -> Result<(), String> {
    match (method, keep) {
        (MaskMethod::Partial, Some(0)) => Err("keep = 0 with method \"partial\": use \"redact\" to hide everything".into()),
        (MaskMethod::Partial, _) | (_, None) => Ok(()),
        (m, Some(_)) => Err(format!("keep only applies to method \"partial\", not \"{}\"", m.name())),
    }
}

fn all_entities() -> Vec<Entity> {
    Entity::ALL.to_vec()
}
fn redact() -> MaskMethod {
    MaskMethod::Redact
}
fn sample() -> u32 {
    100
}
fn threshold() -> f64 {
    0.5
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_patterns() {
        let p = ColumnPattern::parse("shop.users.email").unwrap();
        assert!(p.matches("shop", "users", "email"));
        assert!(!p.matches("shop", "users", "email2"));
        let p = ColumnPattern::parse("*.phone").unwrap();
        assert!(p.matches("any", "t", "phone") && !p.matches("any", "t", "phones"));
        let p = ColumnPattern::parse("*mail*").unwrap();
        assert!(p.matches("a", "b", "user_email_addr"));
        assert!(ColumnPattern::parse("a..b").is_err());
        assert!(ColumnPattern::parse("a.b.c.d").is_err());
    }
}
