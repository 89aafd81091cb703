//! Deterministic fake rows for the reference `users` table.
//!
//! Uses its own splitmix64 so the same `(n, seed)` yields the same rows on every machine and
//! with any `rand` version (tests and the demo compare against fixed expectations).

use std::borrow::Borrow;

/// The reference table. Deliberately no primary key: the reference pipeline's table has none.
pub const USERS_DDL: &str = "CREATE TABLE users (userid INT NOT NULL, username VARCHAR(16), \
firstname VARCHAR(32), lastname VARCHAR(32), city VARCHAR(64), state CHAR(2), email VARCHAR(128), \
phone CHAR(14), numberofdocuments INT)";

/// Column order of [`USERS_DDL`] and of the generated INSERTs.
#[rustfmt::skip]
pub const COLUMNS: [&str; 9] = [
    "userid", "username", "firstname", "lastname", "city", "state", "email", "phone",
    "numberofdocuments",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub userid: i32,
    pub username: String,
    pub firstname: String,
    pub lastname: String,
    pub city: String,
    pub state: String,
    pub email: String,
    pub phone: String,
    pub numberofdocuments: i32,
}

#[rustfmt::skip]
const FIRST: [&str; 60] = [
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas",
    "Sarah", "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa", "Matthew", "Betty",
    "Anthony", "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Paul",
    "Emily", "Andrew", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda",
    "Brian", "Melissa", "George", "Deborah", "Timothy", "Stephanie", "Ronald", "Rebecca",
    "Jason", "Laura", "Edward", "Sharon", "Jeffrey", "Cynthia", "Ryan", "Kathleen",
];

// At most 11 characters, so usernames (initial + name + 4 digits) fit VARCHAR(16).
#[rustfmt::skip]
const LAST: [&str; 60] = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "O'Brien", "O'Connor", "Kim",
    "Patel", "Murphy", "Cook", "Rogers", "Morgan", "Peterson", "Cooper",
];

// (city, state, area code)
#[rustfmt::skip]
const CITIES: [(&str, &str, u16); 40] = [
    ("Seattle", "WA", 206), ("Spokane", "WA", 509), ("Portland", "OR", 503),
    ("San Francisco", "CA", 415), ("Los Angeles", "CA", 213), ("San Diego", "CA", 619),
    ("Sacramento", "CA", 916), ("Phoenix", "AZ", 602), ("Tucson", "AZ", 520),
    ("Las Vegas", "NV", 702), ("Salt Lake City", "UT", 801), ("Denver", "CO", 303),
    ("Boise", "ID", 208), ("Albuquerque", "NM", 505), ("Dallas", "TX", 214),
    ("Houston", "TX", 713), ("Austin", "TX", 512), ("San Antonio", "TX", 210),
    ("Oklahoma City", "OK", 405), ("Kansas City", "MO", 816), ("St. Louis", "MO", 314),
    ("Minneapolis", "MN", 612), ("Chicago", "IL", 312), ("Milwaukee", "WI", 414),
    ("Detroit", "MI", 313), ("Indianapolis", "IN", 317), ("Columbus", "OH", 614),
    ("Nashville", "TN", 615), ("Atlanta", "GA", 404), ("Miami", "FL", 305),
    ("Orlando", "FL", 407), ("Charlotte", "NC", 704), ("Raleigh", "NC", 919),
    ("Richmond", "VA", 804), ("Washington", "DC", 202), ("Baltimore", "MD", 410),
    ("Philadelphia", "PA", 215), ("New York", "NY", 212), ("Boston", "MA", 617),
    ("Coeur d'Alene", "ID", 208),
];

const DOMAINS: [&str; 4] = ["example.com", "example.net", "example.org", "mail.example.com"];

/// splitmix64: tiny, fast and fully specified, hence stable across platforms.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-enough value in `0..n` (multiply-shift; bias is negligible for small n).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

fn ascii_letters_lower(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphabetic).map(|c| c.to_ascii_lowercase()).collect()
}

/// `n` users with userid 1..=n. The same `(n, seed)` always yields the same rows, and a
/// smaller `n` yields a prefix of a larger one.
pub fn generate(n: usize, seed: u64) -> impl Iterator<Item = User> {
    let mut rng = SplitMix64(seed);
    (1..=n).map(move |i| {
        let first = rng.pick(&FIRST);
        let last = rng.pick(&LAST);
        let (city, state, area) = rng.pick(&CITIES);
        let num = 1 + rng.below(9999);
        let (f, l) = (ascii_letters_lower(first), ascii_letters_lower(last));
        User {
            userid: i32::try_from(i).unwrap_or(i32::MAX),
            username: format!("{}{l}{num}", &f[..1]),
            firstname: first.to_string(),
            lastname: last.to_string(),
            city: city.to_string(),
            state: state.to_string(),
            email: format!("{f}.{l}{num}@{}", rng.pick(&DOMAINS)),
            // 555-0100..0199 is reserved for fiction.
            phone: format!("({area}) 555-{:04}", 100 + rng.below(100)),
            numberofdocuments: rng.below(50) as i32,
        }
    })
}

/// A single-quoted SQL string literal. Quotes are doubled (valid with and without
/// NO_BACKSLASH_ESCAPES); backslashes and control characters are escaped for the default mode.
pub fn sql_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x1a' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The row as a parenthesised VALUES tuple in [`COLUMNS`] order.
pub fn values_tuple(u: &User) -> String {
    format!(
        "({},{},{},{},{},{},{},{},{})",
        u.userid,
        sql_quote(&u.username),
        sql_quote(&u.firstname),
        sql_quote(&u.lastname),
        sql_quote(&u.city),
        sql_quote(&u.state),
        sql_quote(&u.email),
        sql_quote(&u.phone),
        u.numberofdocuments
    )
}

/// Multi-row `INSERT INTO users (...) VALUES ...` statements of at most `batch` rows each
/// (no trailing `;`).
pub fn insert_sql_batches<U: Borrow<User>>(users: impl IntoIterator<Item = U>, batch: usize) -> Vec<String> {
    let head = format!("INSERT INTO users ({}) VALUES ", COLUMNS.join(","));
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut rows = 0;
    for u in users {
        cur.push_str(if rows == 0 { &head } else { "," });
        cur.push_str(&values_tuple(u.borrow()));
        rows += 1;
        if rows == batch.max(1) {
            out.push(std::mem::take(&mut cur));
            rows = 0;
        }
    }
    if rows > 0 {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_prefix_stable() {
        let a: Vec<User> = generate(500, 42).collect();
        assert_eq!(a, generate(500, 42).collect::<Vec<_>>());
        assert_eq!(a[..100], generate(100, 42).collect::<Vec<_>>()[..]);
        assert_ne!(a, generate(500, 43).collect::<Vec<_>>());
        // Pinned so a change of algorithm or lists is a deliberate, visible decision.
        let pinned = User {
            userid: 1,
            username: "bmartinez3442".into(),
            firstname: "Brian".into(),
            lastname: "Martinez".into(),
            city: "Denver".into(),
            state: "CO".into(),
            email: "brian.martinez3442@example.com".into(),
            phone: "(303) 555-0186".into(),
            numberofdocuments: 10,
        };
        assert_eq!(a[0], pinned);
    }

    #[test]
    fn field_formats_fit_the_table() {
        for u in generate(5000, 7) {
            assert_eq!(u.phone.len(), 14, "{}", u.phone);
            assert!(u.phone.starts_with('(') && u.phone[5..].starts_with(" 555-01"));
            assert!(u.email.contains('@') && u.email.len() <= 128, "{}", u.email);
            assert!(u.username.len() <= 16, "{}", u.username);
            assert!(u.username.chars().all(|c| c.is_ascii_alphanumeric()));
            assert_eq!(u.state.len(), 2);
            assert!((0..50).contains(&u.numberofdocuments));
        }
    }

    #[test]
    fn usernames_are_mostly_unique() {
        let mut names: Vec<String> = generate(10_000, 1).map(|u| u.username).collect();
        names.sort();
        names.dedup();
        assert!(names.len() > 9_900, "{}", names.len());
    }

    #[test]
    fn escapes_quotes() {
        assert_eq!(sql_quote("O'Brien"), "'O''Brien'");
        assert_eq!(sql_quote(r"a\b"), r"'a\\b'");
        let u = generate(2000, 3).find(|u| u.lastname == "O'Brien").expect("an O'Brien");
        let sql = insert_sql_batches([&u], 10);
        assert_eq!(sql.len(), 1);
        assert!(sql[0].contains("'O''Brien'"), "{}", sql[0]);
    }

    #[test]
    fn batches() {
        let users: Vec<User> = generate(25, 9).collect();
        let sql = insert_sql_batches(&users, 10);
        assert_eq!(sql.len(), 3);
        assert!(sql.iter().all(|s| s.starts_with("INSERT INTO users (userid,username,")));
        assert_eq!(sql[2].matches("),(").count(), 4);
        assert!(insert_sql_batches(Vec::<User>::new(), 10).is_empty());
    }
}
