//! Duration literals of `period = "..."`: one or more `<integer><unit>` terms, as in
//! `"500ms"`, `"1s"`, `"2m"`, `"1h 30m"`; checked at compile time.

const NANOS_PER_SEC: u128 = 1_000_000_000;

const UNITS: &str = "ns, us, ms, s, m, h or d";

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" | "sec" | "secs" => NANOS_PER_SEC,
        "m" | "min" | "mins" => 60 * NANOS_PER_SEC,
        "h" | "hr" | "hrs" => 3_600 * NANOS_PER_SEC,
        "d" | "day" | "days" => 86_400 * NANOS_PER_SEC,
        _ => return None,
    })
}

/// `text` as whole seconds and nanoseconds, or why it is not a duration.
pub fn parse(text: &str) -> Result<(u64, u32), String> {
    let mut rest = text.trim_start();
    if rest.is_empty() {
        return Err("an empty duration: write one such as \"500ms\", \"1s\" or \"2m\"".into());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "`{text}` is not a duration: expected a number at `{rest}` (such as \"500ms\" or \"1s\")"
            ));
        }
        let number: u128 = rest[..digits].parse().map_err(|_| format!("`{text}` is too long a duration"))?;
        rest = rest[digits..].trim_start();
        let letters = rest.find(|c: char| c.is_ascii_digit() || c.is_whitespace()).unwrap_or(rest.len());
        let unit = &rest[..letters];
        if unit.starts_with(['.', ',']) {
            return Err(format!("`{text}` has a fraction: write it in a smaller unit (\"1500ms\", not \"1.5s\")"));
        }
        if unit.is_empty() {
            return Err(format!("`{text}` has a number without a unit: add one of {UNITS} (as in \"{number}s\")"));
        }
        let scale = unit_nanos(unit).ok_or_else(|| format!("unknown unit `{unit}` in `{text}`: use {UNITS}"))?;
        total = number
            .checked_mul(scale)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(|| format!("`{text}` is too long a duration"))?;
        rest = rest[letters..].trim_start();
    }
    if total == 0 {
        return Err("a period of zero: a periodic operation needs a period longer than zero".into());
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| format!("`{text}` is too long a duration"))?;
    Ok((secs, (total % NANOS_PER_SEC) as u32))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn single_terms() {
        assert_eq!(parse("500ms"), Ok((0, 500_000_000)));
        assert_eq!(parse("1s"), Ok((1, 0)));
        assert_eq!(parse("2m"), Ok((120, 0)));
        assert_eq!(parse("3h"), Ok((10_800, 0)));
        assert_eq!(parse("1d"), Ok((86_400, 0)));
        assert_eq!(parse("250us"), Ok((0, 250_000)));
        assert_eq!(parse("7ns"), Ok((0, 7)));
        assert_eq!(parse("15 secs"), Ok((15, 0)));
    }

    #[test]
    fn terms_add_up() {
        assert_eq!(parse("1m30s"), Ok((90, 0)));
        assert_eq!(parse("1h 1m 1s 1ms"), Ok((3_661, 1_000_000)));
        assert_eq!(parse("1500ms"), Ok((1, 500_000_000)));
    }

    #[test]
    fn refusals_say_why() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("5").unwrap_err().contains("without a unit"));
        assert!(parse("5 fortnights").unwrap_err().contains("unknown unit `fortnights`"));
        assert!(parse("s").unwrap_err().contains("expected a number"));
        assert!(parse("1.5s").unwrap_err().contains("a fraction"));
        assert!(parse("0s").unwrap_err().contains("zero"));
        assert!(parse("-1s").unwrap_err().contains("expected a number"));
        assert!(parse("99999999999999999999999999999999999999999s").unwrap_err().contains("too long"));
        assert!(parse("999999999999999999999d").unwrap_err().contains("too long"));
    }
}
