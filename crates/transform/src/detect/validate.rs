//! Validators that turn regex candidates into detections.
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use sluice_core::config::Entity;

pub(super) fn valid(entity: Entity, s: &str) -> bool {
    match entity {
        Entity::Email => email(s),
        Entity::PhoneNumber => phone(s),
        Entity::CreditCard => credit_card(s),
        Entity::UsSsn => ssn(s),
        Entity::IpAddress => ip(s),
        Entity::Iban => iban(s),
    }
}

/// A span found inside text must not be a piece of a longer token (`1.2.3.4.5`, `x555-0142`).
pub(super) fn standalone(text: &str, r: &Range<usize>) -> bool {
    let before = text[..r.start].chars().next_back();
    let after = text[r.end..].chars().next();
    let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '@');
    let dotted_on = |c: Option<char>, next: Option<char>| c == Some('.') && next.is_some_and(|n| n.is_ascii_digit());
    let after2 = text[r.end..].chars().nth(1);
    let before2 = text[..r.start].chars().rev().nth(1);
    !glued(before) && !glued(after) && !dotted_on(after, after2) && !dotted_on(before, before2)
}

fn email(s: &str) -> bool {
    let Some((local, _)) = s.split_once('@') else { return false };
    !local.contains("..") && !local.ends_with('.')
}

fn digits(s: &str) -> Vec<u8> {
    s.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect()
}

/// Separators between digit groups, and the groups' lengths.
fn groups(s: &str) -> (Vec<char>, Vec<usize>) {
    let (mut seps, mut lens, mut run) = (Vec::new(), Vec::new(), 0);
    for c in s.chars() {
        if c.is_ascii_digit() {
            run += 1;
        } else {
            if run > 0 {
                lens.push(run);
            }
            run = 0;
            if matches!(c, ' ' | '-' | '.') {
                seps.push(c);
            }
        }
    }
    if run > 0 {
        lens.push(run);
    }
    (seps, lens)
}

fn looks_like_date(s: &str) -> bool {
    let (seps, lens) = groups(s);
    let first_sep = seps.first().copied();
    lens.len() >= 3
        && seps.iter().take(2).all(|&c| Some(c) == first_sep && c != ' ')
        && ((lens[0] == 4 && lens[1] <= 2 && lens[2] <= 2) || (lens[0] <= 2 && lens[1] <= 2 && (lens[2] == 4 || lens[2] == 2)))
}

fn phone(s: &str) -> bool {
    let n = digits(s).len();
    let plus = s.starts_with('+');
    let (seps, lens) = groups(s);
    let shaped = plus || s.contains('(') || !seps.is_empty();
    if !shaped || looks_like_date(s) || ip(s) {
        return false;
    }
    if !(if plus { 8..=15 } else { 10..=13 }).contains(&n) {
        return false;
    }
    // Single-digit groups only lead (a trunk or country code, `1-800-…`, `+33 1 …`): ISBNs and
    // part numbers have them in the middle.
    let lead = if plus { 2 } else { 1 };
    lens.iter().skip(lead).all(|&l| l >= 2) && lens.last().is_some_and(|&l| l >= 2)
}

fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn credit_card(s: &str) -> bool {
    let d = digits(s);
    if !(13..=19).contains(&d.len()) || !(2..=6).contains(&d[0]) || !luhn(&d) {
        return false;
    }
    let (seps, lens) = groups(s);
    if seps.is_empty() {
        return true;
    }
    let same_sep = seps.iter().all(|&c| c == seps[0] && c != '.');
    let fours = lens[..lens.len() - 1].iter().all(|&l| l == 4);
    same_sep && (fours || lens == [4, 6, 5] || lens == [4, 6, 4])
}

fn ssn(s: &str) -> bool {
    let d = digits(s);
    let (seps, _) = groups(s);
    let area = u32::from(d[0]) * 100 + u32::from(d[1]) * 10 + u32::from(d[2]);
    let group = u32::from(d[3]) * 10 + u32::from(d[4]);
    let serial = d[5..].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    seps.len() == 2 && seps[0] == seps[1] && area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn ip(s: &str) -> bool {
    if s.contains(':') {
        return s.matches(':').count() >= 2 && s.parse::<Ipv6Addr>().is_ok() && s.chars().any(|c| c.is_ascii_hexdigit());
    }
    s.parse::<Ipv4Addr>().is_ok()
}

/// Lengths of the countries' IBANs (the common ones; others are checked by checksum alone).
const IBAN_LENGTHS: [(&str, usize); 24] = [
    ("AT", 20),
    ("BE", 16),
    ("CH", 21),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("ES", 24),
    ("FI", 18),
    ("FR", 27),
    ("GB", 22),
    ("GR", 27),
    ("HU", 28),
    ("IE", 22),
    ("IT", 27),
    ("LU", 20),
    ("NL", 18),
    ("NO", 15),
    ("PL", 28),
    ("PT", 25),
    ("RO", 24),
    ("SA", 24),
    ("SE", 24),
    ("SK", 24),
    ("TR", 26),
];

fn iban(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| *c != ' ').collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    if s.contains(' ') && s.split(' ').rev().skip(1).any(|g| g.len() != 4) {
        return false;
    }
    if let Some((_, len)) = IBAN_LENGTHS.iter().find(|(cc, _)| compact.starts_with(cc)) {
        if compact.len() != *len {
            return false;
        }
    }
    // ISO 13616: move the first four characters to the end, letters to 10..35, mod 97 == 1.
    let rearranged = compact[4..].chars().chain(compact[..4].chars());
    let mut rem: u32 = 0;
    for c in rearranged {
        let v = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}
