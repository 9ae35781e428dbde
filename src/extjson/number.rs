//! Number and date text: doubles in the MongoDB Go driver's spelling, ISO-8601 dates.
//!
//! Doubles are written the way the Go driver (and so `bsondump`, `mongoexport`) writes them:
//! Go's `strconv.FormatFloat(f, 'G', -1, 64)` — the shortest digits that round-trip, in exponent
//! form (`1.234567E+06`, `1E-05`, two-digit minimum exponent) when the decimal exponent is below
//! -4 or at least 6 — plus `.0` when the result has neither `.` nor `E`. This matches every double
//! of the BSON corpus (`1.0`, `-0.0`, `1.2345678921232E+18`) and bsondump's output byte for byte.
//! The same text is a valid JSON number, so relaxed output uses it unquoted.
//!
//! The shortest digits come from `ryu` (the same digits Go's shortest formatting produces); only
//! the layout is ours.

/// Largest millisecond value whose UTC year is at most 9999 (9999-12-31T23:59:59.999Z).
const MAX_ISO_MILLIS: i64 = 253_402_300_799_999;

/// Writes a 64-bit integer in decimal.
#[inline]
pub(super) fn write_i64(v: i64, out: &mut Vec<u8>) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

/// Writes an unsigned 32-bit integer in decimal.
#[inline]
pub(super) fn write_u32(v: u32, out: &mut Vec<u8>) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

/// Writes a BSON double: `{"$numberDouble":"…"}` in canonical form; in relaxed form a JSON number
/// when finite, else the canonical wrapper (JSON has no NaN or infinities).
#[inline]
pub(super) fn write_double(v: f64, canonical: bool, out: &mut Vec<u8>) {
    if !v.is_finite() {
        out.extend_from_slice(if v.is_nan() {
            br#"{"$numberDouble":"NaN"}"#
        } else if v > 0.0 {
            br#"{"$numberDouble":"Infinity"}"#
        } else {
            br#"{"$numberDouble":"-Infinity"}"#
        });
    } else if canonical {
        out.extend_from_slice(br#"{"$numberDouble":""#);
        write_finite_double(v, out);
        out.extend_from_slice(br#""}"#);
    } else {
        write_finite_double(v, out);
    }
}

/// Writes a finite double in Go's `'G'` shortest layout (see the module docs).
pub(super) fn write_finite_double(v: f64, out: &mut Vec<u8>) {
    if v.is_sign_negative() {
        out.push(b'-');
    }
    let magnitude = v.abs();
    // Fast path for integral values (common: JavaScript applications store every number as a
    // double): their shortest digits are the integer's digits, no float formatting needed.
    if magnitude < 9_007_199_254_740_992.0 && magnitude.fract() == 0.0 {
        let mut buf = itoa::Buffer::new();
        let text = buf.format(magnitude as u64).as_bytes();
        let mut significant = text.len();
        while significant > 1 && text[significant - 1] == b'0' {
            significant -= 1;
        }
        if magnitude == 0.0 {
            out.extend_from_slice(b"0.0");
        } else {
            write_go_layout(&text[..significant], text.len() as i32, out);
        }
        return;
    }

    let mut ryu_buf = ryu::Buffer::new();
    let text = ryu_buf.format_finite(magnitude).as_bytes();
    // Decompose ryu's text ("1234.5", "0.0001", "1.5e-7", "1e21") into significant digits and
    // the position of the decimal point relative to them (value = 0.DIGITS × 10^point).
    let mut digits = [0u8; 40];
    let mut count = 0usize;
    let mut int_digits = 0i32;
    let mut seen_dot = false;
    let mut exponent = 0i32;
    for (idx, &c) in text.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                if count < digits.len() {
                    digits[count] = c;
                    count += 1;
                }
                if !seen_dot {
                    int_digits += 1;
                }
            }
            b'.' => seen_dot = true,
            b'e' | b'E' => {
                exponent = parse_exponent(&text[idx + 1..]);
                break;
            }
            _ => {}
        }
    }
    let mut point = int_digits + exponent;
    let mut first = 0;
    while first < count && digits[first] == b'0' {
        first += 1;
        point -= 1;
    }
    let mut last = count;
    while last > first && digits[last - 1] == b'0' {
        last -= 1;
    }
    if first == last {
        out.extend_from_slice(b"0.0");
    } else {
        write_go_layout(&digits[first..last], point, out);
    }
}

/// Lays out significant digits `d` (no leading or trailing zeros, not empty) with the decimal
/// point `point` digits from their start, as Go's `'G'` format does, plus `.0` when neither `.`
/// nor `E` appears.
fn write_go_layout(d: &[u8], point: i32, out: &mut Vec<u8>) {
    let n = d.len() as i32;
    let exp10 = point - 1;
    if !(-4..6).contains(&exp10) {
        out.push(d[0]);
        if d.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&d[1..]);
        }
        out.push(b'E');
        out.push(if exp10 < 0 { b'-' } else { b'+' });
        let magnitude = exp10.unsigned_abs();
        if magnitude < 10 {
            out.push(b'0');
        }
        write_u32(magnitude, out);
    } else {
        if point > 0 {
            let int_len = point.min(n) as usize;
            out.extend_from_slice(&d[..int_len]);
            for _ in n..point {
                out.push(b'0');
            }
        } else {
            out.push(b'0');
        }
        let frac = n - point;
        if frac > 0 {
            out.push(b'.');
            for i in 0..frac {
                let j = point + i;
                out.push(if (0..n).contains(&j) {
                    d[j as usize]
                } else {
                    b'0'
                });
            }
        } else {
            out.extend_from_slice(b".0");
        }
    }
}

/// Writes the string form of a Decimal128 (BSON byte order), per the Decimal128 spec's
/// to-string algorithm: plain notation when the exponent is at most 0 and the adjusted exponent at
/// least -6, scientific otherwise; non-canonical coefficients (above 10^34 - 1) read as zero; NaN
/// has no sign. Same text as `bson::Decimal128`'s `Display`, without its allocations.
pub(super) fn write_decimal128(bytes: &[u8; 16], out: &mut Vec<u8>) {
    let v = u128::from_le_bytes(*bytes);
    let negative = v >> 127 == 1;
    // Combination field: the 5 bits after the sign.
    if (v >> 123) & 0xF == 0xF {
        if (v >> 122) & 1 == 1 {
            out.extend_from_slice(b"NaN");
        } else {
            out.extend_from_slice(if negative { b"-Infinity" } else { b"Infinity" });
        }
        return;
    }
    const MAX_COEFFICIENT: u128 = 10u128.pow(34) - 1;
    let (biased_exponent, coefficient) = if (v >> 125) & 0b11 == 0b11 {
        // The implied leading bits are 100: at least 2^113, always above 10^34 - 1.
        (((v >> 111) & 0x3FFF) as i32, 0)
    } else {
        let c = v & ((1u128 << 113) - 1);
        (
            ((v >> 113) & 0x3FFF) as i32,
            if c > MAX_COEFFICIENT { 0 } else { c },
        )
    };
    let exponent = biased_exponent - 6176;
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(coefficient).as_bytes();
    let n = digits.len() as i32;
    let adjusted = exponent + n - 1;
    if negative {
        out.push(b'-');
    }
    if exponent <= 0 && adjusted >= -6 {
        if exponent == 0 {
            out.extend_from_slice(digits);
        } else {
            let point = n + exponent;
            if point <= 0 {
                out.extend_from_slice(b"0.");
                for _ in point..0 {
                    out.push(b'0');
                }
                out.extend_from_slice(digits);
            } else {
                let (int_part, frac_part) = digits.split_at(point as usize);
                out.extend_from_slice(int_part);
                out.push(b'.');
                out.extend_from_slice(frac_part);
            }
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'E');
        if adjusted >= 0 {
            out.push(b'+');
        }
        write_i64(i64::from(adjusted), out);
    }
}

fn parse_exponent(text: &[u8]) -> i32 {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let mut value = 0i32;
    for &c in digits {
        if c.is_ascii_digit() {
            value = value.saturating_mul(10).saturating_add(i32::from(c - b'0'));
        }
    }
    if negative { -value } else { value }
}

/// Writes a BSON datetime: `{"$date":{"$numberLong":"…"}}`, or in relaxed form
/// `{"$date":"YYYY-MM-DDTHH:MM:SS[.mmm]Z"}` for years 1970 to 9999. Milliseconds are written only
/// when non-zero, as the Extended JSON spec says and the corpus expects
/// (`1970-01-01T00:00:00Z`, `2012-12-24T12:15:30.501Z`).
#[inline]
pub(super) fn write_date(millis: i64, canonical: bool, out: &mut Vec<u8>) {
    if !canonical && (0..=MAX_ISO_MILLIS).contains(&millis) {
        out.extend_from_slice(br#"{"$date":""#);
        write_iso8601(millis, out);
        out.extend_from_slice(br#""}"#);
    } else {
        out.extend_from_slice(br#"{"$date":{"$numberLong":""#);
        write_i64(millis, out);
        out.extend_from_slice(br#""}}"#);
    }
}

/// ISO-8601 UTC text for a non-negative millisecond count (callers keep it within year 9999).
fn write_iso8601(millis: i64, out: &mut Vec<u8>) {
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let mut text = [0u8; 24];
    put4(&mut text[0..4], year);
    text[4] = b'-';
    put2(&mut text[5..7], month);
    text[7] = b'-';
    put2(&mut text[8..10], day);
    text[10] = b'T';
    put2(&mut text[11..13], sod / 3600);
    text[13] = b':';
    put2(&mut text[14..16], sod / 60 % 60);
    text[16] = b':';
    put2(&mut text[17..19], sod % 60);
    let len = if ms == 0 {
        19
    } else {
        text[19] = b'.';
        put3(&mut text[20..23], ms);
        23
    };
    out.extend_from_slice(&text[..len]);
    out.push(b'Z');
}

fn put2(dst: &mut [u8], v: i64) {
    dst[0] = b'0' + (v / 10 % 10) as u8;
    dst[1] = b'0' + (v % 10) as u8;
}

fn put3(dst: &mut [u8], v: i64) {
    dst[0] = b'0' + (v / 100 % 10) as u8;
    put2(&mut dst[1..], v % 100);
}

fn put4(dst: &mut [u8], v: i64) {
    put2(&mut dst[0..2], v / 100 % 100);
    put2(&mut dst[2..], v % 100);
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01, by Howard Hinnant's
/// `civil_from_days` algorithm (exact for the whole i64 day range we pass it).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(v: f64) -> String {
        let mut out = Vec::new();
        write_finite_double(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn date(ms: i64, canonical: bool) -> String {
        let mut out = Vec::new();
        write_date(ms, canonical, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn doubles_follow_go_strconv_g_with_point_zero() {
        // Expected values are what Go's strconv.FormatFloat(f, 'G', -1, 64) (+ ".0") prints.
        let cases: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (-1.0, "-1.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (2.5, "2.5"),
            (4.01, "4.01"),
            (0.1, "0.1"),
            (1.0001220703125, "1.0001220703125"),
            (1.2345678921232e18, "1.2345678921232E+18"),
            (-1.2345678921232e18, "-1.2345678921232E+18"),
            (100_000.0, "100000.0"),
            (999_999.0, "999999.0"),
            (999_999.5, "999999.5"),
            (1_000_000.0, "1E+06"),
            (1_234_567.0, "1.234567E+06"),
            (0.0001, "0.0001"),
            (0.000_123, "0.000123"),
            (0.00001, "1E-05"),
            (1e21, "1E+21"),
            (1e100, "1E+100"),
            (-1e300, "-1E+300"),
            (5e-324, "5E-324"),
            (f64::MAX, "1.7976931348623157E+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014E-308"),
            (123_456.789, "123456.789"),
            (42.42, "42.42"),
            (9_007_199_254_740_993.0, "9.007199254740992E+15"),
        ];
        for &(v, expected) in cases {
            assert_eq!(double(v), expected, "formatting {v:e}");
            // The text must read back as the same double.
            assert_eq!(double(v).parse::<f64>().unwrap().to_bits(), v.to_bits());
        }
    }

    #[test]
    fn doubles_round_trip_and_use_exponents_only_outside_go_range() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..200_000u32 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let v = match i % 3 {
                0 => f64::from_bits(state),
                // Integral values, which take the fast path.
                1 => (state >> (state % 64)) as f64 * if state & 1 == 0 { 1.0 } else { -1.0 },
                _ => (state % 100_000_000) as f64 / 100.0,
            };
            if !v.is_finite() {
                continue;
            }
            let text = double(v);
            assert_eq!(
                text.parse::<f64>().unwrap().to_bits(),
                v.to_bits(),
                "{text}"
            );
            let exp10 = if v == 0.0 {
                0
            } else {
                v.abs().log10().floor() as i32
            };
            // Allow for log10 rounding right at powers of ten.
            if (-3..5).contains(&exp10) {
                assert!(!text.contains('E'), "{text} should be fixed notation");
            } else if !(-5..=6).contains(&exp10) {
                assert!(text.contains('E'), "{text} should be scientific notation");
            }
        }
    }

    #[test]
    fn decimal128_text_matches_the_bson_crate() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut checked = 0;
        for i in 0..200_000u32 {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&next().to_le_bytes());
            bytes[8..].copy_from_slice(&next().to_le_bytes());
            match i % 4 {
                // Small coefficients with exponents around the plain/scientific boundary.
                0 => {
                    let coefficient = u128::from(next() % 10_000_000);
                    let exponent = (next() % 60) as u128 + 6176 - 40;
                    let sign = u128::from(next() & 1) << 127;
                    bytes = (sign | exponent << 113 | coefficient).to_le_bytes();
                }
                // Full-width coefficients, some non-canonical.
                1 => bytes[15] &= 0x9F,
                _ => {}
            }
            let mut ours = Vec::new();
            write_decimal128(&bytes, &mut ours);
            let expected = bson::Decimal128::from_bytes(bytes).to_string();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                expected,
                "bytes {bytes:02x?}"
            );
            checked += 1;
        }
        assert_eq!(checked, 200_000);
    }

    #[test]
    fn non_finite_doubles_use_the_wrapper_in_both_formats() {
        for canonical in [true, false] {
            let mut out = Vec::new();
            write_double(f64::NAN, canonical, &mut out);
            write_double(f64::INFINITY, canonical, &mut out);
            write_double(f64::NEG_INFINITY, canonical, &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                r#"{"$numberDouble":"NaN"}{"$numberDouble":"Infinity"}{"$numberDouble":"-Infinity"}"#
            );
        }
    }

    #[test]
    fn relaxed_dates_are_iso8601_within_years_1970_to_9999() {
        assert_eq!(date(0, false), r#"{"$date":"1970-01-01T00:00:00Z"}"#);
        assert_eq!(date(1, false), r#"{"$date":"1970-01-01T00:00:00.001Z"}"#);
        assert_eq!(
            date(1_356_351_330_501, false),
            r#"{"$date":"2012-12-24T12:15:30.501Z"}"#
        );
        assert_eq!(
            date(1_356_351_330_500, false),
            r#"{"$date":"2012-12-24T12:15:30.500Z"}"#
        );
        assert_eq!(
            date(951_782_400_000, false),
            r#"{"$date":"2000-02-29T00:00:00Z"}"#
        );
        assert_eq!(
            date(MAX_ISO_MILLIS, false),
            r#"{"$date":"9999-12-31T23:59:59.999Z"}"#
        );
        assert_eq!(
            date(MAX_ISO_MILLIS + 1, false),
            r#"{"$date":{"$numberLong":"253402300800000"}}"#
        );
        assert_eq!(date(-1, false), r#"{"$date":{"$numberLong":"-1"}}"#);
        assert_eq!(
            date(i64::MIN, false),
            r#"{"$date":{"$numberLong":"-9223372036854775808"}}"#
        );
        assert_eq!(date(0, true), r#"{"$date":{"$numberLong":"0"}}"#);
    }

    #[test]
    fn civil_dates_match_chrono_across_the_range() {
        // chrono is a dependency of the crate; use it as an independent oracle.
        let mut ms = 0i64;
        while ms <= MAX_ISO_MILLIS {
            let mut out = Vec::new();
            write_iso8601(ms, &mut out);
            let expected = chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .format(if ms % 1000 == 0 {
                    "%Y-%m-%dT%H:%M:%SZ"
                } else {
                    "%Y-%m-%dT%H:%M:%S%.3fZ"
                })
                .to_string();
            assert_eq!(String::from_utf8(out).unwrap(), expected);
            ms += 86_399_999_937; // a prime-ish step that visits varied days, times and millis
        }
    }
}
