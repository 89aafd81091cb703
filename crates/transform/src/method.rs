//! The masking methods, value by value. Pure functions: the same input always gives the same
//! output, which keeps replays after a crash identical and hashed keys mergeable.
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sluice_core::config::MaskMethod;
use sluice_core::Value;

use crate::key::MaskKey;

/// What `redact` writes, as the reference pipeline's Glue job does.
pub const REDACTED: &str = "########";
/// Default for `partial` without `keep`: the last four, like a card or phone receipt.
pub const DEFAULT_KEEP: usize = 4;

/// A method with its parameters and key, ready to apply.
#[derive(Clone)]
pub struct Masking {
    pub method: MaskMethod,
    keep: usize,
    /// HMAC already keyed: cloning it per value skips re-deriving the inner and outer pads.
    mac: Option<Hmac<Sha256>>,
}

impl std::fmt::Debug for Masking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masking").field("method", &self.method).field("keep", &self.keep).field("keyed", &self.mac.is_some()).finish()
    }
}

impl Masking {
    /// `key` must be present for `hash`; without one, `hash` fails closed to `redact`.
    pub fn new(method: MaskMethod, keep: Option<u32>, key: Option<MaskKey>) -> Self {
        let keep = keep.map_or(DEFAULT_KEEP, |k| k as usize);
        let mac = key.map(|k| <Hmac<Sha256> as Mac>::new_from_slice(k.bytes()).expect("HMAC takes keys of any length"));
        Self { method, keep, mac }
    }

    /// The masked form of a value; NULL stays NULL. `drop` is the caller's business (the column
    /// disappears); asked for a value anyway, it gives NULL.
    pub fn value(&self, v: &Value) -> Value {
        match (self.method, v) {
            (_, Value::Null) | (MaskMethod::Null | MaskMethod::Drop, _) => Value::Null,
            (MaskMethod::Hash, Value::Bytes(b)) => Value::Text(self.hash(b)),
            (_, Value::Text(s) | Value::Json(s)) => Value::Text(self.text(s)),
            (_, other) => Value::Text(self.text(&other.render())),
        }
    }

    /// The masked form of a piece of text (a whole value or a span inside one).
    pub fn text(&self, s: &str) -> String {
        match self.method {
            MaskMethod::Redact | MaskMethod::Null | MaskMethod::Drop => REDACTED.to_string(),
            MaskMethod::Hash => self.hash(s.as_bytes()),
            MaskMethod::Partial => partial(s, self.keep),
            MaskMethod::Email => email(s),
        }
    }

    fn hash(&self, data: &[u8]) -> String {
        let Some(mac) = &self.mac else { return REDACTED.to_string() };
        let mut mac = mac.clone();
        mac.update(data);
        hex(&mac.finalize().into_bytes())
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Stars every letter and digit but the last `keep`, keeping punctuation and spacing, so the
/// shape stays recognisable: `(206) 555-0142` → `(***) ***-0142`. A value with no more than
/// `keep` letters and digits is starred entirely (showing all of it would mask nothing).
pub fn partial(s: &str, keep: usize) -> String {
    let total = s.chars().filter(|c| c.is_alphanumeric()).count();
    let visible_from = if total > keep { total - keep } else { usize::MAX };
    let mut seen = 0;
    s.chars()
        .map(|c| {
            if !c.is_alphanumeric() {
                return c;
            }
            seen += 1;
            if seen > visible_from {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// `jane.doe@example.com` → `j***@example.com`; anything that is not an address is redacted.
pub fn email(s: &str) -> String {
    match s.trim().rsplit_once('@') {
        Some((local, domain)) if domain.contains('.') && !domain.starts_with('.') => match local.chars().next() {
            Some(first) => format!("{first}***@{domain}"),
            None => REDACTED.to_string(),
        },
        _ => REDACTED.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MaskKey {
        MaskKey::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap()
    }

    #[test]
    fn redact_replaces_every_value_but_null() {
        let m = Masking::new(MaskMethod::Redact, None, None);
        assert_eq!(m.value(&Value::Text("jane@example.com".into())), Value::Text(REDACTED.into()));
        assert_eq!(m.value(&Value::Int(42)), Value::Text(REDACTED.into()));
        assert_eq!(m.value(&Value::Null), Value::Null);
    }

    #[test]
    fn hash_is_keyed_deterministic_and_hex() {
        let m = Masking::new(MaskMethod::Hash, None, Some(key()));
        let a = m.value(&Value::Text("jane@example.com".into()));
        assert_eq!(a, m.value(&Value::Text("jane@example.com".into())));
        let Value::Text(h) = &a else { panic!("{a:?}") };
        assert_eq!(h.len(), 64);
        assert!(h.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, m.value(&Value::Text("john@example.com".into())));
        // Another key, another hash: the key is what keeps hashes from being reversed by guessing.
        let other = Masking::new(MaskMethod::Hash, None, Some(MaskKey::from_bytes(vec![7; 32]).unwrap()));
        assert_ne!(a, other.value(&Value::Text("jane@example.com".into())));
        // Known-answer check against RFC 4231 test case 2 (key "Jefe").
        let jefe = Masking::new(MaskMethod::Hash, None, Some(MaskKey(b"Jefe".to_vec())));
        assert_eq!(jefe.text("what do ya want for nothing?"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        // Integers hash by their text, so an INT key and its VARCHAR copy elsewhere still join.
        assert_eq!(m.value(&Value::Int(17)), m.value(&Value::Text("17".into())));
    }

    #[test]
    fn hash_without_a_key_fails_closed() {
        let m = Masking::new(MaskMethod::Hash, None, None);
        assert_eq!(m.text("jane@example.com"), REDACTED);
    }

    #[test]
    fn partial_keeps_the_last_characters_and_the_shape() {
        assert_eq!(partial("(206) 555-0142", 4), "(***) ***-0142");
        assert_eq!(partial("+44 20 7946 0958", 4), "+** ** **** 0958");
        assert_eq!(partial("1234", 4), "****");
        assert_eq!(partial("ab", 4), "**");
        let m = Masking::new(MaskMethod::Partial, Some(2), None);
        assert_eq!(m.value(&Value::Text("4111-1111".into())), Value::Text("****-**11".into()));
    }

    #[test]
    fn email_keeps_the_domain_only() {
        assert_eq!(email("jane.doe@example.com"), "j***@example.com");
        assert_eq!(email("not an address"), REDACTED);
        assert_eq!(email("@example.com"), REDACTED);
        assert_eq!(email("a@localhost"), REDACTED);
    }

    #[test]
    fn null_and_drop_give_null() {
        for method in [MaskMethod::Null, MaskMethod::Drop] {
            assert_eq!(Masking::new(method, None, None).value(&Value::Text("x".into())), Value::Null);
        }
    }
}
