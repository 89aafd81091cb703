//! Sealing of positions that hold row values (a snapshot's last key), so that masked PII
//! never sits in clear in the state file. ChaCha20-Poly1305 with a key derived from the
//! masking key; each seal has a fresh random nonce.
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::SluiceError;

const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    /// Derives the sealing key from the masking key (never used directly, so a sealed
    /// position reveals nothing about hashes and vice versa).
    pub fn new(mask_key: &[u8]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(mask_key).expect("HMAC takes keys of any length");
        mac.update(b"sluice/state-seal/v1");
        let derived = mac.finalize().into_bytes();
        Self { cipher: ChaCha20Poly1305::new(Key::from_slice(&derived)) }
    }

    pub fn seal(&self, plain: &[u8]) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = self.cipher.encrypt(&nonce, plain).expect("in-memory encryption does not fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, SluiceError> {
        let bad = || {
            SluiceError::permanent(
                "the state's sealed snapshot position cannot be opened: the masking key changed since it was written; restore the previous key, or remove the state dir to start over",
            )
        };
        let raw = sealed.strip_prefix(PREFIX).ok_or_else(bad)?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(raw).map_err(|_| bad())?;
        if bytes.len() < NONCE_LEN {
            return Err(bad());
        }
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        self.cipher.decrypt(Nonce::from_slice(nonce), ct).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_round_trip_and_hide_the_plain_text() {
        let s = Sealer::new(b"0123456789abcdef0123456789abcdef");
        let sealed = s.seal(b"jane@example.com");
        assert!(!sealed.contains("jane"));
        assert_ne!(sealed, s.seal(b"jane@example.com"), "fresh nonce per seal");
        assert_eq!(s.open(&sealed).unwrap(), b"jane@example.com");
        let other = Sealer::new(b"another key, also 32 bytes long!");
        assert!(other.open(&sealed).unwrap_err().message.contains("masking key changed"));
    }
}
