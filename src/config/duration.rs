//! Human durations in the configuration: `30s`, `10m`, `24h`, `90d`, `1h30m`.

use std::time::Duration;

/// What a valid duration looks like, for error messages and documentation.
pub const DURATION_HELP: &str =
    "expected whole numbers with the units s, m, h or d, largest first (e.g. 30s, 10m, 1h30m, 90d)";

/// Parses a duration such as `45s`, `10m`, `1h30m` or `90d`.
///
/// # Errors
///
/// A message naming the text and saying what is accepted ([`DURATION_HELP`]).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration `{text}`: {DURATION_HELP}");
    if text.is_empty() {
        return Err(invalid());
    }

    let mut total: u64 = 0;
    let mut last_unit_seconds = u64::MAX;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let (number, after) = rest.split_at(digits);
        let unit_seconds = match after.bytes().next() {
            Some(b's') => 1,
            Some(b'm') => 60,
            Some(b'h') => 3600,
            Some(b'd') => 86_400,
            _ => return Err(invalid()),
        };
        // Each unit once, largest first: `1h30m` is clear, `30m1h` and `1m1m` are typos.
        if unit_seconds >= last_unit_seconds {
            return Err(invalid());
        }
        last_unit_seconds = unit_seconds;

        let value: u64 = number.parse().map_err(|_| invalid())?;
        total = value
            .checked_mul(unit_seconds)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or_else(|| format!("duration `{text}` is too long"))?;
        rest = &after[1..];
    }
    Ok(Duration::from_secs(total))
}

/// Writes a duration back in the units [`parse_duration`] reads: `1h30m`, `90d`, `0s`.
#[must_use]
pub fn format_duration(duration: Duration) -> String {
    let mut seconds = duration.as_secs();
    if seconds == 0 {
        return "0s".to_owned();
    }
    let mut text = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if seconds >= size {
            text.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_durations() {
        let cases = [
            ("30s", 30),
            ("10m", 600),
            ("24h", 86_400),
            ("90d", 7_776_000),
            ("1h30m", 5400),
            ("1d2h3m4s", 93_784),
            ("0s", 0),
        ];
        for (text, seconds) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(seconds)),
                "{text}"
            );
            assert_eq!(
                parse_duration(&format_duration(Duration::from_secs(seconds))),
                Ok(Duration::from_secs(seconds))
            );
        }
    }

    #[test]
    fn rejected_durations() {
        for text in [
            "", "30", "s", "5 m", "10min", "1.5h", "-5m", "30m1h", "1m1m", "10ms", " 5m",
        ] {
            assert_eq!(
                parse_duration(text),
                Err(format!("invalid duration `{text}`: {DURATION_HELP}")),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_duration("99999999999999999999d"),
            Err("invalid duration `99999999999999999999d`: ".to_owned() + DURATION_HELP)
        );
        assert_eq!(
            parse_duration("999999999999999999d"),
            Err("duration `999999999999999999d` is too long".to_owned())
        );
    }

    #[test]
    fn format_uses_the_largest_units() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(90 * 86_400)), "90d");
    }
}
