//! The secret behind `hash`: from `[mask_key] file` or SLUICE_MASK_KEY.
use std::fmt;

use sluice_core::config::{Config, MaskMethod, SinkSettings, SourceSettings, MASK_KEY_ENV, MIN_KEY_BYTES};
use sluice_core::SluiceError;

/// Key material for HMAC. Never printed: `Debug` shows only its length.
#[derive(Clone)]
pub struct MaskKey(pub(crate) Vec<u8>);

impl fmt::Debug for MaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MaskKey({} bytes)", self.0.len())
    }
}

impl MaskKey {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, SluiceError> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(SluiceError::permanent(format!(
                "the masking key is {} bytes long; use at least {MIN_KEY_BYTES} random bytes, e.g. `openssl rand -hex 32`",
                bytes.len()
            )));
        }
        Ok(Self(bytes))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Loads the key the config points at. Missing is an error only when a rule needs it
    /// (`hash`); key columns that get masked need it too, which the masker checks per table.
    pub fn load<S: SourceSettings, K: SinkSettings>(cfg: &Config<S, K>) -> Result<Option<Self>, SluiceError> {
        let key = cfg.mask_key_bytes().map_err(SluiceError::permanent)?;
        let needed = cfg.mask.iter().any(|r| r.method.needs_key()) || cfg.detect.as_ref().is_some_and(|d| d.action == MaskMethod::Hash);
        match key {
            Some(k) => Self::from_bytes(k).map(Some),
            None if needed => Err(missing()),
            None => Ok(None),
        }
    }
}

pub(crate) fn missing() -> SluiceError {
    SluiceError::permanent(format!(
        "masking with \"hash\" needs a secret key: set {MASK_KEY_ENV} (at least {MIN_KEY_BYTES} bytes, e.g. `export {MASK_KEY_ENV}=$(openssl rand -hex 32)`) or [mask_key] file = \"/path/to/key\"; keep it stable, or hashes stop matching across runs"
    ))
}
