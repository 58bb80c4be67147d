//! Deployment windows: `freeze = ["Fri 15:00-Mon 09:00 Europe/Berlin"]`.
//! Inside a freeze no rollout starts or advances (a rollback always may).
//!
//! Three forms, each with an optional IANA time zone (default UTC):
//! weekly `Fri 15:00-Mon 09:00`, daily `18:00-08:00`, and one-off
//! `2026-12-24 00:00-2026-12-27 00:00`. Times are wall-clock times in the
//! zone, daylight saving included; the zone database is compiled in, so
//! a machine without `/usr/share/zoneinfo` reads them the same way.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

const DAY: i64 = 24 * 60;
const WEEK: i64 = 7 * DAY;

/// One window as written, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct FreezeWindow {
    /// The text as written in the file, for status and events.
    pub text: String,
    span: Span,
    tz: TimeZone,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Span {
    /// Minutes since Monday 00:00, start and end.
    Weekly(i64, i64),
    /// Minutes since 00:00, start and end.
    Daily(i64, i64),
    Once(DateTime, DateTime),
}

impl std::str::FromStr for FreezeWindow {
    type Err = String;

    fn from_str(text: &str) -> Result<FreezeWindow, String> {
        let example = "write e.g. \"Fri 15:00-Mon 09:00 Europe/Berlin\", \"18:00-08:00 UTC\" or \"2026-12-24 00:00-2026-12-27 00:00 Europe/Berlin\"";
        let mut words: Vec<&str> = text.split_whitespace().collect();
        let tz = match words.last() {
            Some(last) if last.contains('/') || last.chars().all(|c| c.is_ascii_uppercase()) => {
                let name = words.pop().unwrap_or("UTC");
                TimeZone::get(name).map_err(|e| format!("unknown time zone {name:?}: {e}"))?
            }
            _ => TimeZone::UTC,
        };
        let rest = words.join(" ");
        // The separator is the first '-' after the first time of day.
        let colon = rest
            .find(':')
            .ok_or_else(|| format!("no time in {text:?}; {example}"))?;
        let dash = rest[colon..]
            .find('-')
            .map(|i| colon + i)
            .ok_or_else(|| format!("no '-' between start and end in {text:?}; {example}"))?;
        let (start, end) = (rest[..dash].trim(), rest[dash + 1..].trim());
        let bad = |what: &str| format!("{what:?} in {text:?}: {example}");
        let span = match (point(start), point(end)) {
            (Some(Point::Daily(s)), Some(Point::Daily(e))) => Span::Daily(s, e),
            (Some(Point::Weekly(s)), Some(Point::Weekly(e))) => Span::Weekly(s, e),
            (Some(Point::Once(s)), Some(Point::Once(e))) if s < e => Span::Once(s, e),
            (Some(Point::Once(_)), Some(Point::Once(_))) => {
                return Err(format!("{text:?} ends before it starts"))
            }
            (None, _) => return Err(bad(start)),
            (_, None) => return Err(bad(end)),
            _ => {
                return Err(format!(
                    "start and end of {text:?} must have the same form; {example}"
                ))
            }
        };
        if let Span::Daily(s, e) | Span::Weekly(s, e) = span {
            if s == e {
                return Err(format!("{text:?} starts where it ends"));
            }
        }
        Ok(FreezeWindow {
            text: text.trim().to_string(),
            span,
            tz,
        })
    }
}

enum Point {
    Daily(i64),
    Weekly(i64),
    Once(DateTime),
}

/// `HH:MM`, `Fri HH:MM` or `YYYY-MM-DD HH:MM`.
fn point(text: &str) -> Option<Point> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        [time] => Some(Point::Daily(minutes(time)?)),
        [day, time] if day.contains('-') => {
            let date: Date = day.parse().ok()?;
            let m = minutes(time)?;
            let t = Time::new((m / 60).min(23) as i8, (m % 60) as i8, 0, 0).ok()?;
            Some(Point::Once(date.to_datetime(t)))
        }
        [day, time] => Some(Point::Weekly(weekday(day)? * DAY + minutes(time)?)),
        _ => None,
    }
}

fn minutes(text: &str) -> Option<i64> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m) || (h, m) == (24, 0)).then_some(h * 60 + m)
}

fn weekday(text: &str) -> Option<i64> {
    let names = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let lower = text.to_ascii_lowercase();
    names
        .iter()
        .position(|n| lower.len() >= 3 && n.starts_with(&lower))
        .map(|i| i as i64)
}

impl FreezeWindow {
    /// When the window that holds `now_ms` ends (Unix ms), or `None`
    /// outside it.
    pub fn until(&self, now_ms: u64) -> Option<u64> {
        let now = Timestamp::from_millisecond(now_ms as i64).ok()?;
        let local = now.to_zoned_datetime(self.tz.clone()).datetime();
        let (period, start, end, at) = match self.span {
            Span::Once(s, e) => {
                let (s, e) = (self.unix(s)?, self.unix(e)?);
                return (s <= now_ms && now_ms < e).then_some(e);
            }
            Span::Weekly(s, e) => {
                let day = i64::from(local.date().weekday().to_monday_zero_offset());
                (WEEK, s, e, day * DAY + minute_of_day(local))
            }
            Span::Daily(s, e) => (DAY, s, e, minute_of_day(local)),
        };
        let inside = if start < end {
            start <= at && at < end
        } else {
            at >= start || at < end
        };
        if !inside {
            return None;
        }
        // The end, as a wall-clock time ahead of now in the zone.
        let ahead = (end - at).rem_euclid(period);
        let ahead = if ahead == 0 { period } else { ahead };
        let floor = local
            .date()
            .to_datetime(Time::new(local.hour(), local.minute(), 0, 0).ok()?);
        let end = floor.checked_add(SignedDuration::from_mins(ahead)).ok()?;
        self.unix(end)
    }

    fn unix(&self, at: DateTime) -> Option<u64> {
        let zoned = at.to_zoned_datetime(self.tz.clone()).ok()?;
        u64::try_from(zoned.timestamp().as_millisecond()).ok()
    }
}

fn minute_of_day(local: DateTime) -> i64 {
    i64::from(local.hour()) * 60 + i64::from(local.minute())
}

/// When the freeze that holds `now_ms` ends, following windows that
/// touch or overlap; `None` when no window holds `now_ms`.
pub fn frozen_until(windows: &[FreezeWindow], now_ms: u64) -> Option<(u64, &FreezeWindow)> {
    let mut found: Option<(u64, &FreezeWindow)> = None;
    let mut at = now_ms;
    // Bounded: windows chained end to end cannot go on for ever.
    for _ in 0..=windows.len() * 4 {
        let next = windows
            .iter()
            .filter_map(|w| Some((w.until(at)?, w)))
            .max_by_key(|(end, _)| *end);
        match next {
            Some((end, w)) if end > at => {
                found.get_or_insert((end, w)).0 = end;
                at = end;
            }
            _ => break,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> u64 {
        let ts: Timestamp = text.parse().unwrap();
        ts.as_millisecond() as u64
    }

    #[test]
    fn weekly_window_in_a_time_zone() {
        let w: FreezeWindow = "Fri 15:00-Mon 09:00 Europe/Berlin".parse().unwrap();
        // Friday 2026-12-04 14:59 in Berlin (UTC+1) is before the freeze.
        assert_eq!(w.until(ms("2026-12-04T13:59:00Z")), None);
        let end = ms("2026-12-07T08:00:00Z");
        assert_eq!(w.until(ms("2026-12-04T14:00:00Z")), Some(end));
        assert_eq!(w.until(ms("2026-12-06T23:00:00Z")), Some(end));
        assert_eq!(w.until(end), None);
        // Summer time: UTC+2.
        assert_eq!(
            w.until(ms("2026-07-04T12:00:00Z")),
            Some(ms("2026-07-06T07:00:00Z"))
        );
    }

    #[test]
    fn daily_and_one_off_windows() {
        let night: FreezeWindow = "18:00-08:00".parse().unwrap();
        assert_eq!(
            night.until(ms("2026-12-02T23:30:00Z")),
            Some(ms("2026-12-03T08:00:00Z"))
        );
        assert_eq!(night.until(ms("2026-12-02T12:00:00Z")), None);
        let xmas: FreezeWindow = "2026-12-24 00:00-2026-12-27 00:00 Europe/Berlin"
            .parse()
            .unwrap();
        assert_eq!(
            xmas.until(ms("2026-12-25T10:00:00Z")),
            Some(ms("2026-12-26T23:00:00Z"))
        );
        assert_eq!(xmas.until(ms("2026-12-28T10:00:00Z")), None);
    }

    #[test]
    fn touching_windows_chain() {
        let a: FreezeWindow = "Fri 15:00-Sat 00:00 UTC".parse().unwrap();
        let b: FreezeWindow = "Sat 00:00-Mon 09:00 UTC".parse().unwrap();
        let list = [a, b];
        let (end, _) = frozen_until(&list, ms("2026-12-04T16:00:00Z")).unwrap();
        assert_eq!(end, ms("2026-12-07T09:00:00Z"));
    }

    #[test]
    fn bad_windows_say_why() {
        for (text, want) in [
            ("Fri 15:00-Mon 09:00 Mars/Olympus", "unknown time zone"),
            ("Fri 15:00", "no '-'"),
            ("Fri 15:00-09:00", "same form"),
            ("Fre 15:00-Mon 09:00", "\"Fre 15:00\""),
            ("25:00-26:00", "\"25:00\""),
            ("2026-12-27 00:00-2026-12-24 00:00", "ends before"),
        ] {
            let err = text.parse::<FreezeWindow>().unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
