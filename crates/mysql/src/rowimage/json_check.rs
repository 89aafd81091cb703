//! A bounds check of MySQL's binary JSON before mysql_common's parser sees it: that parser trusts
//! the document's counts and offsets (a bad element count sizes a `Vec`, a bad DECIMAL inside
//! the document panics), and entries may share one sub-document, so a small document could
//! expand without bound. This walks the document as the parser will and refuses it unless every
//! count, offset and length fits the bytes and the expanded document stays within a few times
//! their size.

/// Nesting deeper than MySQL allows (100) is refused.
const MAX_DEPTH: usize = 100;

/// Whether `doc` (type byte, then value) is safe to hand to mysql_common's parser.
pub(super) fn is_valid(doc: &[u8]) -> bool {
    let Some((&ty, value)) = doc.split_first() else { return true };
    // Every node visited costs budget: the expanded document is at most ~8 nodes per byte.
    let mut budget = 8 * doc.len() + 64;
    check(ty, value, 0, &mut budget)
}

fn check(ty: u8, data: &[u8], depth: usize, budget: &mut usize) -> bool {
    if depth > MAX_DEPTH || *budget == 0 {
        return false;
    }
    *budget -= 1;
    match ty {
        0x00 => container(data, false, true, depth, budget),
        0x01 => container(data, true, true, depth, budget),
        0x02 => container(data, false, false, depth, budget),
        0x03 => container(data, true, false, depth, budget),
        0x04 => !data.is_empty(),
        0x05 | 0x06 => data.len() >= 2,
        0x07 | 0x08 => data.len() >= 4,
        0x09..=0x0b => data.len() >= 8,
        0x0c => var_len(data).is_some_and(|(n, at)| at.checked_add(n).is_some_and(|end| end <= data.len())),
        0x0f => {
            let Some((&opaque_ty, rest)) = data.split_first() else { return false };
            let Some((n, at)) = var_len(rest) else { return false };
            let Some(body) = at.checked_add(n).and_then(|end| rest.get(at..end)) else { return false };
            // NEWDECIMAL: precision, scale, then the decimal (the parser subtracts the two).
            opaque_ty != 246 || matches!(body, [p, s, bin @ ..] if super::decimal_ok(bin, usize::from(*p), usize::from(*s)))
        }
        _ => false,
    }
}

/// An object or array: count, size, key entries, value entries, then the data they point into.
fn container(data: &[u8], large: bool, object: bool, depth: usize, budget: &mut usize) -> bool {
    let w = if large { 4 } else { 2 };
    let read = |at: usize, n: usize| -> Option<usize> {
        let b = data.get(at..at.checked_add(n)?)?;
        Some(b.iter().rev().fold(0usize, |acc, &x| (acc << 8) | usize::from(x)))
    };
    let (Some(count), Some(size)) = (read(0, w), read(w, w)) else { return false };
    if size > data.len() {
        return false;
    }
    let data = &data[..size];
    let key_entry = if object { w + 2 } else { 0 };
    let value_entry = 1 + w;
    let Some(header) = count.checked_mul(key_entry + value_entry).and_then(|h| h.checked_add(2 * w)) else { return false };
    if header > size || count > *budget {
        return false;
    }
    for i in 0..count {
        if object {
            let at = 2 * w + i * key_entry;
            let (Some(off), Some(len)) = (read(at, w), read(at + w, 2)) else { return false };
            if off.checked_add(len).is_none_or(|end| end > size) {
                return false;
            }
        }
        let at = 2 * w + count * key_entry + i * value_entry;
        let ty = data[at];
        let inlined = matches!(ty, 0x04..=0x06) || (large && matches!(ty, 0x07 | 0x08));
        if inlined {
            if !check(ty, &data[at + 1..at + 1 + w], depth + 1, budget) {
                return false;
            }
            continue;
        }
        let Some(off) = read(at + 1, w) else { return false };
        if off >= size || !check(ty, &data[off..], depth + 1, budget) {
            return false;
        }
    }
    true
}

/// MySQL's variable-length length (7 bits a byte, at most 5 bytes) and the bytes it took.
fn var_len(data: &[u8]) -> Option<(usize, usize)> {
    let mut n = 0usize;
    for (i, &b) in data.iter().take(5).enumerate() {
        n |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_counts_and_offsets_beyond_the_bytes() {
        // {"a": 1} as MySQL writes it: small object, one key, int16 inlined.
        let ok = [0x00, 1, 0, 12, 0, 11, 0, 1, 0, 0x05, 1, 0, b'a'];
        assert!(is_valid(&ok));
        let mut big_count = ok;
        big_count[1] = 0xff;
        assert!(!is_valid(&big_count));
        let mut big_size = ok;
        big_size[3] = 0xff;
        assert!(!is_valid(&big_size));
        let mut bad_key = ok;
        bad_key[5] = 40;
        assert!(!is_valid(&bad_key));
        // An opaque DECIMAL whose scale exceeds its precision.
        assert!(!is_valid(&[0x0f, 246, 3, 2, 5, 0]));
        // DECIMAL(5,2) 128.01, then a first group of 1000 (more than its three digits).
        assert!(is_valid(&[0x0f, 246, 5, 5, 2, 0x80, 0x80, 0x01]));
        assert!(!is_valid(&[0x0f, 246, 5, 5, 2, 0x83, 0xe8, 0x01]));
        assert!(is_valid(&[]));
        assert!(!is_valid(&[0x0c, 0x80]));
    }
}
