//! Report schedules: five-field cron expressions (minute, hour, day of month, month, day of
//! week) read in an IANA time zone. Fields take `*`, numbers, ranges `a-b`, steps `*/n` and
//! `a-b/n`, and comma lists; day of week counts Sunday as 0 or 7. As in classic cron, when
//! both day fields are restricted a day matching either one fires. Wall-clock times that a
//! daylight-saving jump skips fire at the first instant after the jump; times that happen
//! twice fire once, at the first.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

/// A parsed schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    minutes: Vec<i8>,
    hours: Vec<i8>,
    days_of_month: Vec<i8>,
    months: Vec<i8>,
    /// 0 (Sunday) to 6.
    days_of_week: Vec<i8>,
    day_of_month_restricted: bool,
    day_of_week_restricted: bool,
    zone: TimeZone,
}

/// How far ahead a schedule is searched: a valid expression that fires less often than this
/// (the 31st of February) is refused.
const SEARCH_DAYS: i32 = 366 * 5;

fn field(text: &str, name: &str, low: i8, high: i8) -> Result<Vec<i8>, String> {
    let mut values = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: i8 = step.parse().map_err(|_| format!("{name}: {step:?} is not a step"))?;
                if step < 1 {
                    return Err(format!("{name}: a step must be at least 1"));
                }
                (range, step)
            }
            None => (part, 1),
        };
        let number = |text: &str| -> Result<i8, String> {
            let value: i8 = text.parse().map_err(|_| format!("{name}: {text:?} is not a number"))?;
            if (low..=high).contains(&value) {
                Ok(value)
            } else {
                Err(format!("{name}: {value} is outside {low}-{high}"))
            }
        };
        let (first, last) = match range {
            "*" => (low, high),
            range => match range.split_once('-') {
                Some((first, last)) => (number(first)?, number(last)?),
                // `5/15` means from 5 on, every 15.
                None if part.contains('/') => (number(range)?, high),
                None => {
                    let value = number(range)?;
                    (value, value)
                }
            },
        };
        if first > last {
            return Err(format!("{name}: the range {first}-{last} is backwards"));
        }
        values.extend((first..=last).step_by(step as usize));
    }
    values.sort_unstable();
    values.dedup();
    Ok(values)
}

impl Schedule {
    /// Parses `expression` in `time_zone` (an IANA name; empty is UTC).
    pub fn parse(expression: &str, time_zone: &str) -> Result<Self, String> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let [minute, hour, day_of_month, month, day_of_week] = fields[..] else {
            return Err(format!(
                "a schedule has five fields (minute hour day-of-month month day-of-week); {:?} has {}",
                expression,
                fields.len()
            ));
        };
        let zone = match time_zone {
            "" => TimeZone::UTC,
            name => TimeZone::get(name).map_err(|_| format!("{name:?} is not an IANA time zone"))?,
        };
        let mut days_of_week: Vec<i8> =
            field(day_of_week, "day of week", 0, 7)?.into_iter().map(|day| day % 7).collect();
        days_of_week.sort_unstable();
        days_of_week.dedup();
        let schedule = Self {
            minutes: field(minute, "minute", 0, 59)?,
            hours: field(hour, "hour", 0, 23)?,
            days_of_month: field(day_of_month, "day of month", 1, 31)?,
            months: field(month, "month", 1, 12)?,
            days_of_week,
            day_of_month_restricted: day_of_month != "*",
            day_of_week_restricted: day_of_week != "*",
            zone,
        };
        if schedule.next_after(Timestamp::UNIX_EPOCH.as_microsecond().max(0)).is_none() {
            return Err(format!("{expression:?} never fires"));
        }
        Ok(schedule)
    }

    fn day_matches(&self, date: Date) -> bool {
        let by_month_day = self.days_of_month.contains(&date.day());
        let by_week_day = self.days_of_week.contains(&date.weekday().to_sunday_zero_offset());
        match (self.day_of_month_restricted, self.day_of_week_restricted) {
            (true, true) => by_month_day || by_week_day,
            (true, false) => by_month_day,
            (false, true) => by_week_day,
            (false, false) => true,
        }
    }

    /// The first firing strictly after `after` (microseconds since the epoch), if any within
    /// five years.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let after = Timestamp::from_microsecond(after).ok()?;
        let mut date = after.to_zoned_datetime(self.zone.clone()).date();
        for _ in 0..SEARCH_DAYS {
            if self.months.contains(&date.month()) && self.day_matches(date) {
                for &hour in &self.hours {
                    for &minute in &self.minutes {
                        let wall: DateTime = date.at(hour, minute, 0, 0);
                        let Ok(zoned) = self.zone.to_zoned_datetime(wall) else { continue };
                        // A time a jump skipped resolves past the jump; it still fires once.
                        if zoned.timestamp() > after {
                            return Some(zoned.timestamp().as_microsecond());
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_microsecond()
    }

    fn next(expression: &str, zone: &str, after: &str) -> String {
        let schedule = Schedule::parse(expression, zone).unwrap();
        Timestamp::from_microsecond(schedule.next_after(micros(after)).unwrap()).unwrap().to_string()
    }

    #[test]
    fn fields_take_lists_ranges_and_steps() {
        assert_eq!(next("*/15 * * * *", "", "2026-03-02T10:07:00Z"), "2026-03-02T10:15:00Z");
        assert_eq!(next("0 6 * * 1-5", "", "2026-03-06T07:00:00Z"), "2026-03-09T06:00:00Z", "Friday → Monday");
        assert_eq!(next("30 8,17 * * *", "", "2026-03-02T09:00:00Z"), "2026-03-02T17:30:00Z");
        assert_eq!(next("0 0 1 1,4,7,10 *", "", "2026-02-15T00:00:00Z"), "2026-04-01T00:00:00Z");
        assert_eq!(next("0 12 * * 7", "", "2026-03-02T00:00:00Z"), "2026-03-08T12:00:00Z", "7 is Sunday");
        assert_eq!(next("5/20 * * * *", "", "2026-03-02T10:26:00Z"), "2026-03-02T10:45:00Z");
        // Either day field fires when both are restricted.
        assert_eq!(next("0 0 13 * 5", "", "2026-03-01T00:00:00Z"), "2026-03-06T00:00:00Z");
        assert_eq!(next("0 0 29 2 *", "", "2026-03-01T00:00:00Z"), "2028-02-29T00:00:00Z", "the next leap day");
    }

    #[test]
    fn the_time_zone_holds_across_daylight_saving() {
        // 06:00 in Paris is 05:00 UTC in winter and 04:00 UTC in summer.
        assert_eq!(next("0 6 * * *", "Europe/Paris", "2026-03-28T06:00:00Z"), "2026-03-29T04:00:00Z");
        assert_eq!(next("0 6 * * *", "Europe/Paris", "2026-03-27T06:00:00Z"), "2026-03-28T05:00:00Z");
        // 02:30 does not exist in Paris on 29 March 2026: it fires after the jump, once.
        assert_eq!(next("30 2 * * *", "Europe/Paris", "2026-03-28T12:00:00Z"), "2026-03-29T01:30:00Z");
        assert_eq!(next("0 9 * * *", "America/New_York", "2026-11-01T00:00:00Z"), "2026-11-01T14:00:00Z");
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let refused = |expression: &str, zone: &str| Schedule::parse(expression, zone).unwrap_err();
        assert!(refused("0 6 * *", "").contains("five fields"));
        assert!(refused("60 * * * *", "").contains("minute: 60 is outside 0-59"));
        assert!(refused("0 6 * * *", "Mars/Olympus").contains("not an IANA time zone"));
        assert!(refused("*/0 * * * *", "").contains("step must be at least 1"));
        assert!(refused("0 0 30-2 * *", "").contains("backwards"));
        assert!(refused("0 0 31 2 *", "").contains("never fires"));
        assert!(refused("a * * * *", "").contains("not a number"));
    }
}
