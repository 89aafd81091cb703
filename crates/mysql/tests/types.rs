//! DESIGN.md "Types": the same stored datum must give the same `Value` whether the snapshot
//! (text protocol, op Read) or the binlog (row image, op Insert) reads it, and that value must be
//! the documented one. One table `types.t_<case>` per case, one shared server; each case is its
//! own test so a failure names the type.
#![allow(clippy::unwrap_used)]
mod common;

use common::*;
use sluice_core::Value::{self, Double, Float, Int, Json, UInt, Year, ZeroDate};

macro_rules! cases {
    ($($name:ident => $case:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            check($case).await;
        }
    )*};
}

/// WKB of `POINT(x y)` as MySQL stores geometries: SRID (LE u32), then little-endian WKB.
fn point(srid: u32, x: f64, y: f64) -> Value {
    let mut b = srid.to_le_bytes().to_vec();
    b.push(1);
    b.extend(1u32.to_le_bytes());
    b.extend(x.to_le_bytes());
    b.extend(y.to_le_bytes());
    Value::Bytes(b)
}

cases! {
    // ---- integers at their limits
    tinyint => case("tinyint", "TINYINT").v("-128", Int(-128)).v("127", Int(127)).v("0", Int(0));
    tinyint_unsigned => case("tinyint_unsigned", "TINYINT UNSIGNED").v("0", UInt(0)).v("255", UInt(255));
    smallint => case("smallint", "SMALLINT").v("-32768", Int(-32768)).v("32767", Int(32767));
    smallint_unsigned => case("smallint_unsigned", "SMALLINT UNSIGNED").v("0", UInt(0)).v("65535", UInt(65535));
    mediumint => case("mediumint", "MEDIUMINT").v("-8388608", Int(-8_388_608)).v("8388607", Int(8_388_607)).v("-1", Int(-1));
    mediumint_unsigned => case("mediumint_unsigned", "MEDIUMINT UNSIGNED").v("0", UInt(0)).v("16777215", UInt(16_777_215));
    int => case("int", "INT").v("-2147483648", Int(-2_147_483_648)).v("2147483647", Int(2_147_483_647));
    int_unsigned => case("int_unsigned", "INT UNSIGNED").v("0", UInt(0)).v("4294967295", UInt(4_294_967_295));
    bigint => case("bigint", "BIGINT")
        .v("-9223372036854775808", Int(i64::MIN)).v("9223372036854775807", Int(i64::MAX)).v("-1", Int(-1));
    bigint_unsigned => case("bigint_unsigned", "BIGINT UNSIGNED")
        .v("0", UInt(0)).v("9223372036854775808", UInt(1 << 63)).v("18446744073709551615", UInt(u64::MAX));

    // ---- exact and approximate numbers
    decimal_65_30 => case("decimal_65_30", "DECIMAL(65,30)")
        .v("12345678901234567890123456789012345.123456789012345678901234567890",
           dec("12345678901234567890123456789012345.123456789012345678901234567890"))
        .v("-98765432109876543210987654321098765.000000000000000000000000000001",
           dec("-98765432109876543210987654321098765.000000000000000000000000000001"))
        .v("0", dec("0.000000000000000000000000000000"));
    decimal_5_2 => case("decimal_5_2", "DECIMAL(5,2)")
        .v("12.3", dec("12.30")).v("-0.5", dec("-0.50")).v("0", dec("0.00")).v("999.99", dec("999.99"));
    decimal_10_0 => case("decimal_10_0", "DECIMAL(10,0)").v("-1234567890", dec("-1234567890")).v("0", dec("0"));
    float => case("float", "FLOAT")
        .v("1.5", Float(1.5)).v("-0.1", Float(-0.1)).v("0", Float(0.0)).v("1.2345678", Float(1.234_567_8)).v("16777216", Float(16_777_216.0));
    double => case("double", "DOUBLE")
        .v("1.5", Double(1.5)).v("-0.1", Double(-0.1)).v("1e300", Double(1e300)).v("0.1e0 + 0.2e0", Double(0.1 + 0.2));

    // ---- dates and times
    date_limits => case("date_limits", "DATE")
        .v("'1000-01-01'", date(1000, 1, 1)).v("'9999-12-31'", date(9999, 12, 31))
        .v("'1970-01-01'", date(1970, 1, 1)).v("'2024-02-29'", date(2024, 2, 29));
    datetime_6 => case("datetime_6", "DATETIME(6)")
        .v("'2024-02-29 23:59:58.000120'", datetime(2024, 2, 29, 23, 59, 58, 120))
        .v("'1000-01-01 00:00:00.000000'", datetime(1000, 1, 1, 0, 0, 0, 0))
        .v("'9999-12-31 23:59:59.999999'", datetime(9999, 12, 31, 23, 59, 59, 999_999));
    datetime_3 => case("datetime_3", "DATETIME(3)").v("'2024-01-01 00:00:00.5'", datetime(2024, 1, 1, 0, 0, 0, 500_000));
    datetime_0 => case("datetime_0", "DATETIME")
        .v("'2024-02-29 23:59:58'", datetime(2024, 2, 29, 23, 59, 58, 0))
        .v("'1970-01-01 00:00:00'", datetime(1970, 1, 1, 0, 0, 0, 0));
    // Inserted as +05:30 wall clock: the value is the UTC instant.
    timestamp_6 => case("timestamp_6", "TIMESTAMP(6) NULL").session("SET time_zone = '+05:30'")
        .v("'2024-01-01 10:00:00.123456'", timestamp_utc(2024, 1, 1, 4, 30, 0, 123_456))
        .v("'1970-01-01 05:30:01.000001'", timestamp_utc(1970, 1, 1, 0, 0, 1, 1))
        .v("'2038-01-19 08:44:07.999999'", timestamp_utc(2038, 1, 19, 3, 14, 7, 999_999));
    timestamp_0 => case("timestamp_0", "TIMESTAMP NULL").session("SET time_zone = '-08:00'")
        .v("'2024-06-30 20:00:00'", timestamp_utc(2024, 7, 1, 4, 0, 0, 0));
    time_3 => case("time_3", "TIME(3)")
        .v("'-12:34:56.789'", time(true, 12, 34, 56, 789_000))
        .v("'100:00:00.5'", time(false, 100, 0, 0, 500_000))
        .v("'-00:00:00.001'", time(true, 0, 0, 0, 1000))
        .v("'838:59:59.000'", time(false, 838, 59, 59, 0));
    time_0 => case("time_0", "TIME").v("'-838:59:59'", time(true, 838, 59, 59, 0)).v("'24:00:00'", time(false, 24, 0, 0, 0));
    time_6 => case("time_6", "TIME(6)").v("'-01:00:00.000001'", time(true, 1, 0, 0, 1)).v("'00:00:00'", time(false, 0, 0, 0, 0));
    year => case("year", "YEAR").v("1901", Year(1901)).v("2155", Year(2155)).v("2024", Year(2024)).v("'0000'", Year(0));
    zero_date => case("zero_date", "DATE").session("SET sql_mode = ''")
        .v("'0000-00-00'", ZeroDate).v("'2024-02-00'", text("2024-02-00 00:00:00.000000"));
    zero_datetime => case("zero_datetime", "DATETIME(6)").session("SET sql_mode = ''")
        .v("'0000-00-00 00:00:00'", ZeroDate);
    zero_timestamp => case("zero_timestamp", "TIMESTAMP NULL").session("SET sql_mode = ''")
        .v("'0000-00-00 00:00:00'", ZeroDate);

    // ---- text, decoded with the column's charset
    char_14 => case("char_14", "CHAR(14)")
        .v("'ab'", text("ab")).v("'trailing   '", text("trailing")).v("'  leading'", text("  leading")).v("''", text(""));
    varchar_utf8mb4 => case("varchar_utf8mb4", "VARCHAR(64) CHARACTER SET utf8mb4")
        .v("'😀 ünïcödé'", text("😀 ünïcödé")).v("''", text("")).v("'tail  '", text("tail  "));
    varchar_utf8mb3 => case("varchar_utf8mb3", "VARCHAR(20) CHARACTER SET utf8mb3").v("'ünïcödé'", text("ünïcödé"));
    // MySQL's latin1 is cp1252: '€' is 0x80.
    latin1 => case("latin1", "VARCHAR(32) CHARACTER SET latin1")
        .v("'€uro café'", text("€uro café")).v("'naïve ‰ Œ ÿ'", text("naïve ‰ Œ ÿ"));
    char_latin1 => case("char_latin1", "CHAR(10) CHARACTER SET latin1").v("'€ '", text("€"));
    text_utf8mb4 => case("text_utf8mb4", "TEXT")
        .v("'line1\\nline2 😀'", text("line1\nline2 😀")).v("''", text("")).v("REPEAT('é', 30000)", text(&"é".repeat(30000)));
    json => case("json", "JSON")
        .v(r#"'{"a": [1, 2.5, "x"], "b": null}'"#, Json(r#"{"a": [1, 2.5, "x"], "b": null}"#.into()))
        .v("'[]'", Json("[]".into())).v(r#"'"😀"'"#, Json(r#""😀""#.into()));
    enum_abc => case("enum_abc", "ENUM('a','b','c')").v("'a'", text("a")).v("'c'", text("c"));
    set_xyz => case("set_xyz", "SET('x','y','z')").v("'x,z'", text("x,z")).v("''", text("")).v("'y'", text("y"));

    // ---- binary
    bit_1 => case("bit_1", "BIT(1)").v("b'1'", bytes(&[1])).v("b'0'", bytes(&[0]));
    bit_12 => case("bit_12", "BIT(12)").v("b'101010101010'", bytes(&[0x0A, 0xAA])).v("b'1'", bytes(&[0x00, 0x01]));
    // The server pads BINARY(n) with 0x00; the binlog strips the padding.
    binary_4 => case("binary_4", "BINARY(4)")
        .v("'ab'", bytes(b"ab\0\0")).v("X'00FF'", bytes(&[0, 0xFF, 0, 0])).v("X'01020304'", bytes(&[1, 2, 3, 4]));
    varbinary => case("varbinary", "VARBINARY(16)").v("X'00FF41'", bytes(&[0, 0xFF, 0x41])).v("X''", bytes(&[])).v("X'4100'", bytes(&[0x41, 0]));
    blob => case("blob", "BLOB").v("X'0001FEFF'", bytes(&[0, 1, 0xFE, 0xFF])).v("X'FF00'", bytes(&[0xFF, 0]));
    longblob => case("longblob", "LONGBLOB").v("REPEAT(X'00FF', 50000)", bytes(&[0u8, 0xFF].repeat(50000)));
    geometry => case("geometry", "GEOMETRY")
        .v("ST_GeomFromText('POINT(1 2)')", point(0, 1.0, 2.0)).v("ST_GeomFromText('POINT(-1.5 2)', 4326)", point(4326, -1.5, 2.0));
    point_col => case("point_col", "POINT").v("POINT(3, -4)", point(0, 3.0, -4.0));
}

/// Without column metadata in the binlog (`binlog_row_metadata` MINIMAL, or MariaDB's default
/// NO_LOG), layouts come from information_schema: decoding must not change.
async fn fallback_cases(metadata: &str) {
    let db = start_server(&[&format!("--binlog-row-metadata={metadata}")]);
    let cases = [
        case("enum_abc", "ENUM('a','b','c')").v("'b'", text("b")).v("'c'", text("c")),
        case("set_xyz", "SET('x','y','z')").v("'x,z'", text("x,z")),
        case("tinyint_unsigned", "TINYINT UNSIGNED").v("255", UInt(255)).v("1", UInt(1)),
        case("mediumint_unsigned", "MEDIUMINT UNSIGNED").v("16777215", UInt(16_777_215)),
        case("int_unsigned", "INT UNSIGNED").v("4294967295", UInt(4_294_967_295)),
        case("bigint_unsigned", "BIGINT UNSIGNED").v("18446744073709551615", UInt(u64::MAX)),
        case("int", "INT").v("-2147483648", Int(-2_147_483_648)),
        case("mediumint", "MEDIUMINT").v("-1", Int(-1)).v("-8388608", Int(-8_388_608)),
        case("float", "FLOAT").v("1.2345678", Float(1.234_567_8)),
        case("latin1", "VARCHAR(32) CHARACTER SET latin1").v("'€uro café'", text("€uro café")),
        case("char_14", "CHAR(14)").v("'trailing   '", text("trailing")),
        case("binary_4", "BINARY(4)").v("'ab'", bytes(b"ab\0\0")),
        case("json", "JSON").v(r#"'{"k": 1}'"#, Json(r#"{"k": 1}"#.into())),
        case("decimal_5_2", "DECIMAL(5,2)").v("12.3", dec("12.30")),
        case("timestamp_6", "TIMESTAMP(6) NULL")
            .session("SET time_zone = '+05:30'")
            .v("'2024-01-01 10:00:00.123456'", timestamp_utc(2024, 1, 1, 4, 30, 0, 123_456)),
    ];
    let mut failures = Vec::new();
    for c in &cases {
        for p in check_on(&db, c).await {
            failures.push(format!("{} ({}): {p}", c.name, c.column));
        }
    }
    assert!(failures.is_empty(), "binlog_row_metadata={metadata}:\n  {}", failures.join("\n  "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimal_metadata_uses_information_schema() {
    fallback_cases("MINIMAL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_metadata_uses_information_schema() {
    fallback_cases("NO_LOG").await;
}
