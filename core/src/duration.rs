//! ISO-8601 durations as DRS writes them (`lagDuration`: `PT30S`, `PT1H2M`, `P1DT2H`).

use std::time::Duration;

/// Parses `PnDTnHnMnS` (with optional weeks and fractional seconds). Years and months
/// have no fixed length and are refused rather than guessed.
pub fn parse_iso8601_duration(text: &str) -> Option<Duration> {
    let rest = text.strip_prefix('P')?;
    if rest.is_empty() {
        return None;
    }
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut seconds = 0f64;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut number = String::new();
        let mut next_unit = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' || c == ',' {
                number.push(if c == ',' { '.' } else { c });
                continue;
            }
            let position = units.iter().position(|(u, _)| *u == c)?;
            // Units must come in order, each once.
            if position < next_unit || number.is_empty() {
                return None;
            }
            seconds += number.parse::<f64>().ok()? * units[position].1;
            number.clear();
            next_unit = position + 1;
        }
        number.is_empty().then_some(())
    };
    take(date, &[('W', 604_800.0), ('D', 86_400.0)])?;
    if let Some(time) = time {
        take(time, &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drs_lag_durations() {
        let secs = |t: &str| parse_iso8601_duration(t).map(|d| d.as_secs_f64());
        assert_eq!(secs("PT0S"), Some(0.0));
        assert_eq!(secs("PT30S"), Some(30.0));
        assert_eq!(secs("PT1H2M3S"), Some(3723.0));
        assert_eq!(secs("PT0.5S"), Some(0.5));
        assert_eq!(secs("P1DT2H"), Some(93_600.0));
        assert_eq!(secs("P1W"), Some(604_800.0));
        for bad in ["", "P", "PT", "30S", "PT1S2M", "P1Y", "PTxS", "PT1H1H"] {
            assert_eq!(parse_iso8601_duration(bad), None, "{bad}");
        }
    }
}
