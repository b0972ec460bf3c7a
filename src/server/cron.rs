//! Five-field cron expressions (`minute hour day-of-month month day-of-week`) for
//! `[schedule] reconcile`, in local time: `*`, numbers, ranges `a-b`, steps `*/n` and
//! `a-b/n`, and lists `a,b`. As in Vixie cron, when both day fields are restricted a day
//! matches if either does; day-of-week 0 and 7 are Sunday.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone};

/// A parsed expression: the allowed values of each field as bit sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

fn field(text: &str, name: &str, lo: u32, hi: u32) -> Result<(u64, bool), String> {
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{name}: \"{part}\" has no valid step"))?;
                (r, step)
            }
            None => (part, 1),
        };
        let num = |t: &str| -> Result<u32, String> {
            t.parse::<u32>()
                .ok()
                .filter(|v| (lo..=hi).contains(v))
                .ok_or_else(|| format!("{name}: \"{t}\" is not a number from {lo} to {hi}"))
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(format!("{name}: the range \"{range}\" runs backwards"));
            }
            (a, b)
        } else {
            let a = num(range)?;
            // `5/15` means from 5 to the end, every 15.
            (a, if part.contains('/') { hi } else { a })
        };
        let mut v = a;
        while v <= b {
            set |= 1 << v;
            v += step;
        }
    }
    Ok((set, text != "*"))
}

impl Cron {
    /// Parses an expression; the message names the field that is wrong.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [mi, h, dom, mon, dow] = fields[..] else {
            return Err(format!(
                "\"{text}\" has {} fields; expected 5 (minute hour day-of-month month day-of-week)",
                fields.len()
            ));
        };
        let (minutes, _) = field(mi, "minute", 0, 59)?;
        let (hours, _) = field(h, "hour", 0, 23)?;
        let (days, days_restricted) = field(dom, "day of month", 1, 31)?;
        let (months, _) = field(mon, "month", 1, 12)?;
        let (mut weekdays, weekdays_restricted) = field(dow, "day of week", 0, 7)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Cron {
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_restricted,
            weekdays_restricted,
        })
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        if self.months & (1 << d.month()) == 0 {
            return false;
        }
        let dom = self.days & (1 << d.day()) != 0;
        let dow = self.weekdays & (1 << d.weekday().num_days_from_sunday()) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// The first matching minute strictly after `after`, in `after`'s time zone; `None`
    /// if there is none within eight years (e.g. `0 0 31 2 *`).
    pub fn next_after<Tz: TimeZone>(&self, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        let tz = after.timezone();
        let start = after.naive_local();
        let mut day = start.date();
        let limit = day + Duration::days(366 * 8);
        while day <= limit {
            if self.day_matches(day) {
                for h in (0..24).filter(|h| self.hours & (1 << h) != 0) {
                    for m in (0..60).filter(|m| self.minutes & (1 << m) != 0) {
                        let Some(t) = day.and_hms_opt(h, m, 0) else {
                            continue;
                        };
                        if t <= start {
                            continue;
                        }
                        // A local time skipped by a clock change does not happen.
                        if let Some(at) = tz.from_local_datetime(&t).earliest() {
                            return Some(at);
                        }
                    }
                }
            }
            day = day.succ_opt()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn next(expr: &str, after: &str) -> String {
        Cron::parse(expr)
            .unwrap()
            .next_after(&at(after))
            .unwrap()
            .to_rfc3339()
    }

    #[test]
    fn nightly_and_steps_and_lists() {
        // Nightly at 02:00 Beijing time: later the same night, or the next night.
        assert_eq!(
            next("0 2 * * *", "2026-11-30T01:59:30+08:00"),
            "2026-11-30T02:00:00+08:00"
        );
        assert_eq!(
            next("0 2 * * *", "2026-11-30T02:00:00+08:00"),
            "2026-12-01T02:00:00+08:00"
        );
        assert_eq!(
            next("*/15 * * * *", "2026-11-30T10:07:00+08:00"),
            "2026-11-30T10:15:00+08:00"
        );
        assert_eq!(
            next("30 8-18/5 * * *", "2026-11-30T13:31:00+08:00"),
            "2026-11-30T18:30:00+08:00"
        );
        assert_eq!(
            next("0 0 1,15 * *", "2026-11-30T10:00:00+08:00"),
            "2026-12-01T00:00:00+08:00"
        );
        // Month end to year end.
        assert_eq!(
            next("59 23 31 12 *", "2026-11-30T10:00:00+08:00"),
            "2026-12-31T23:59:00+08:00"
        );
    }

    #[test]
    fn weekdays_and_the_either_rule() {
        // 2026-11-30 is a Monday. Sundays as 0 and as 7.
        assert_eq!(
            next("0 3 * * 0", "2026-11-30T10:00:00+08:00"),
            "2026-12-06T03:00:00+08:00"
        );
        assert_eq!(
            next("0 3 * * 7", "2026-11-30T10:00:00+08:00"),
            "2026-12-06T03:00:00+08:00"
        );
        // Day 1 of the month or any Friday, whichever comes first.
        assert_eq!(
            next("0 0 1 * 5", "2026-11-30T10:00:00+08:00"),
            "2026-12-01T00:00:00+08:00"
        );
        assert_eq!(
            next("0 0 1 * 5", "2026-12-01T10:00:00+08:00"),
            "2026-12-04T00:00:00+08:00"
        );
        // Leap day.
        assert_eq!(
            next("0 0 29 2 *", "2026-11-30T10:00:00+08:00"),
            "2028-02-29T00:00:00+08:00"
        );
        assert!(Cron::parse("0 0 31 2 *")
            .unwrap()
            .next_after(&at("2026-11-30T10:00:00+08:00"))
            .is_none());
    }

    #[test]
    fn bad_expressions_are_named() {
        for (expr, says) in [
            ("0 2 * *", "4 fields"),
            ("60 2 * * *", "minute: \"60\""),
            ("0 24 * * *", "hour: \"24\""),
            ("0 2 0 * *", "day of month: \"0\""),
            ("0 2 * 13 *", "month: \"13\""),
            ("0 2 * * 8", "day of week: \"8\""),
            ("*/0 * * * *", "no valid step"),
            ("0 5-2 * * *", "backwards"),
            ("a b c d e", "minute"),
            ("", "0 fields"),
        ] {
            let e = Cron::parse(expr).unwrap_err();
            assert!(e.contains(says), "{expr}: {e}");
        }
    }
}
