use serde::{Deserialize, Deserializer};

use super::duration::number_and_unit;

/// An amount of memory written as `512KiB`, `16MiB`, `1GiB` (or a plain number of bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || format!("invalid size `{s}`: expected e.g. \"512KiB\", \"16MiB\", \"1GiB\"");
        let (n, unit) = number_and_unit(s).ok_or_else(bad)?;
        let scale: u64 = match unit {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => return Err(format!("invalid size `{s}`: unit must be B, KiB, MiB or GiB")),
        };
        n.checked_mul(scale).map(Self).ok_or_else(bad)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => Ok(Self(n)),
            Raw::Text(s) => Self::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ByteSize;

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("16MiB"), Ok(ByteSize(16 << 20)));
        assert_eq!(ByteSize::parse(" 512 KiB "), Ok(ByteSize(512 << 10)));
        assert_eq!(ByteSize::parse("100"), Ok(ByteSize(100)));
        assert!(ByteSize::parse("16MB").unwrap_err().contains("unit must be"));
        assert!(ByteSize::parse("lots").is_err());
        assert!(ByteSize::parse("99999999999999GiB").is_err());
    }
}
