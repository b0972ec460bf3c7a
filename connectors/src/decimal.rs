//! Exact decimals: parsing decimal text into scaled integers (Arrow Decimal128 values),
//! formatting them back, and rounding quotients half away from zero (SPEC §5).

/// Why a text is not an exact decimal of the wanted scale.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Not plain decimal digits (`N/A`, `1.2万`, `1,000`, `1e3`, empty).
    #[error("is not a number written with digits and an optional decimal point")]
    NotANumber,
    /// More significant fraction digits than the scale allows.
    #[error("has more than {0} fraction digits")]
    TooPrecise(u8),
    /// Too large for the column.
    #[error("is too large")]
    Overflow,
}

/// Parses `[-]digits[.digits]` into an integer scaled by `10^scale`. Trailing zero
/// fraction digits beyond the scale are exact and accepted (`68.270` at scale 2).
pub fn parse_decimal(text: &str, scale: u8) -> Result<i128, DecimalError> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(DecimalError::NotANumber);
    }
    if int_part.is_empty() || !int_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecimalError::NotANumber);
    }
    if body.contains('.')
        && (frac_part.is_empty() || !frac_part.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(DecimalError::NotANumber);
    }
    let scale_us = usize::from(scale);
    if frac_part.len() > scale_us && frac_part[scale_us..].bytes().any(|b| b != b'0') {
        return Err(DecimalError::TooPrecise(scale));
    }
    let mut v: i128 = 0;
    for b in int_part.bytes() {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(b - b'0')))
            .ok_or(DecimalError::Overflow)?;
    }
    let frac = frac_part.as_bytes();
    for i in 0..scale_us {
        let d = frac.get(i).map_or(0, |b| i128::from(b - b'0'));
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(d))
            .ok_or(DecimalError::Overflow)?;
    }
    // Decimal128(18, _) holds at most 18 digits.
    if v >= 10i128.pow(18) {
        return Err(DecimalError::Overflow);
    }
    Ok(if neg { -v } else { v })
}

/// Formats a scaled integer with exactly `scale` fraction digits.
pub fn format_decimal(v: i128, scale: u8) -> String {
    if scale == 0 {
        return v.to_string();
    }
    let p = 10i128.pow(u32::from(scale));
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let p = p as u128;
    format!(
        "{sign}{}.{:0width$}",
        a / p,
        a % p,
        width = usize::from(scale)
    )
}

/// `num / den` rounded half away from zero to an integer (`den` ≠ 0).
pub fn div_round_half_away(num: i128, den: i128) -> i128 {
    let q = num / den;
    let r = num % den;
    if 2 * r.unsigned_abs() >= den.unsigned_abs() {
        if (num < 0) != (den < 0) {
            q - 1
        } else {
            q + 1
        }
    } else {
        q
    }
}

/// Rescales `v` from scale `from` to scale `to`, rounding half away from zero when
/// digits are dropped.
pub fn rescale(v: i128, from: u8, to: u8) -> i128 {
    if to >= from {
        v * 10i128.pow(u32::from(to - from))
    } else {
        div_round_half_away(v, 10i128.pow(u32::from(from - to)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decimal text is read exactly; anything else is refused, never guessed.
    #[test]
    fn parses_exact_decimals() {
        assert_eq!(parse_decimal("68.27", 2), Ok(6827));
        assert_eq!(parse_decimal("1", 2), Ok(100));
        assert_eq!(parse_decimal("-0.5", 2), Ok(-50));
        assert_eq!(parse_decimal("68.270", 2), Ok(6827));
        assert_eq!(parse_decimal("68.275", 2), Err(DecimalError::TooPrecise(2)));
        for bad in [
            "N/A", "1.2万", "", "-", "1,000", "1e3", ".5", "5.", "+5", " 5",
        ] {
            assert_eq!(
                parse_decimal(bad, 2),
                Err(DecimalError::NotANumber),
                "{bad}"
            );
        }
        assert_eq!(
            parse_decimal("10000000000000000000", 2),
            Err(DecimalError::Overflow)
        );
    }

    /// Figures are rounded half away from zero, for both signs.
    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(div_round_half_away(5, 2), 3);
        assert_eq!(div_round_half_away(-5, 2), -3);
        assert_eq!(div_round_half_away(4, 3), 1);
        assert_eq!(div_round_half_away(-4, 3), -1);
        assert_eq!(rescale(12345, 4, 2), 123);
        assert_eq!(rescale(12350, 4, 2), 124);
        assert_eq!(format_decimal(-5, 2), "-0.05");
        assert_eq!(format_decimal(72000, 2), "720.00");
    }
}
