//! Text decoding by MySQL character set. MySQL's `latin1` is Windows-1252.
use std::borrow::Cow;

use encoding_rs::Encoding;
use sluice_core::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    Binary,
    Other(&'static Encoding),
}

impl Charset {
    /// `None` for a character set sluice cannot decode.
    pub fn from_name(name: &str) -> Option<Self> {
        let enc_label = match name {
            "utf8mb4" | "utf8mb3" | "utf8" | "ascii" => return Some(Charset::Utf8),
            "binary" => return Some(Charset::Binary),
            "latin1" => "windows-1252",
            "cp1250" => "windows-1250",
            "cp1251" => "windows-1251",
            "cp1256" => "windows-1256",
            "cp1257" => "windows-1257",
            "latin2" => "iso-8859-2",
            "latin7" => "iso-8859-13",
            "greek" => "iso-8859-7",
            "hebrew" => "iso-8859-8",
            "koi8r" => "koi8-r",
            "koi8u" => "koi8-u",
            "sjis" | "cp932" => "shift_jis",
            "ujis" | "eucjpms" => "euc-jp",
            "euckr" => "euc-kr",
            "gb2312" | "gbk" => "gbk",
            "gb18030" => "gb18030",
            "big5" => "big5",
            "utf16" => "utf-16be",
            "utf16le" => "utf-16le",
            other => other,
        };
        Encoding::for_label(enc_label.as_bytes()).map(Charset::Other)
    }

    /// Decodes column bytes to a text value. Undecodable bytes become U+FFFD with a flag, so
    /// the caller can report the column (never the value).
    pub fn decode(self, bytes: Vec<u8>) -> Result<Value, Vec<u8>> {
        match self {
            Charset::Binary => Ok(Value::Bytes(bytes)),
            Charset::Utf8 => String::from_utf8(bytes).map(Value::Text).map_err(|e| e.into_bytes()),
            Charset::Other(enc) => {
                let (text, had_errors) = enc.decode_without_bom_handling(&bytes);
                if had_errors {
                    Err(bytes)
                } else {
                    Ok(Value::Text(text.into_owned()))
                }
            }
        }
    }
}

impl Charset {
    /// [`Charset::decode`] of borrowed or owned bytes: one copy at most, none for owned UTF-8.
    /// `None` when the bytes are not valid in the character set.
    pub(crate) fn decode_slice(self, bytes: Cow<'_, [u8]>) -> Option<Value> {
        let b = match bytes {
            Cow::Owned(v) => return self.decode(v).ok(),
            Cow::Borrowed(b) => b,
        };
        match self {
            Charset::Binary => Some(Value::Bytes(b.to_vec())),
            Charset::Utf8 => std::str::from_utf8(b).ok().map(|t| Value::Text(t.to_owned())),
            Charset::Other(enc) => {
                let (text, had_errors) = enc.decode_without_bom_handling(b);
                (!had_errors).then(|| Value::Text(text.into_owned()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_is_cp1252() {
        let cs = Charset::from_name("latin1").unwrap();
        assert_eq!(cs.decode(vec![0x80, b'a', 0xe9]).unwrap(), Value::Text("€aé".into()));
        assert_eq!(Charset::from_name("utf8mb4").unwrap().decode("😀".into()).unwrap(), Value::Text("😀".into()));
        assert!(Charset::from_name("utf8mb4").unwrap().decode(vec![0xff]).is_err());
        assert!(Charset::from_name("nonesuch").is_none());
    }
}
