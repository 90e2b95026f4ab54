//! Quiet hours: `HH:MM` to `HH:MM` in the person's time zone (an IANA name, UTC when unset),
//! possibly across midnight. Email waits until they end; in-app is silent anyway; security
//! alerts are not held.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// `HH:MM` as (hour, minute).
pub fn parse_clock(text: &str) -> Option<(i8, i8)> {
    let (hour, minute) = text.split_once(':')?;
    if hour.len() != 2 || minute.len() != 2 {
        return None;
    }
    let (hour, minute) = (hour.parse::<i8>().ok()?, minute.parse::<i8>().ok()?);
    ((0..24).contains(&hour) && (0..60).contains(&minute)).then_some((hour, minute))
}

/// The time zone named `name` (UTC for none), if it is one.
pub fn zone(name: &str) -> Option<TimeZone> {
    if name.is_empty() { Some(TimeZone::UTC) } else { TimeZone::get(name).ok() }
}

/// When the quiet hours around `now` (µs) end, if `now` is in them.
pub fn quiet_until(start: &str, end: &str, zone_name: &str, now: i64) -> Option<i64> {
    let (start, end, zone) = (parse_clock(start)?, parse_clock(end)?, zone(zone_name)?);
    if start == end {
        return None;
    }
    let local = Timestamp::from_microsecond(now).ok()?.to_zoned_datetime(zone.clone());
    let clock = (local.hour(), local.minute());
    let today = local.date();
    // Quiet from `start` to `end` the same day, or from `start` to `end` the next day.
    let ends_on: Date = if start < end {
        if clock < start || clock >= end {
            return None;
        }
        today
    } else if clock >= start {
        today.tomorrow().ok()?
    } else if clock < end {
        today
    } else {
        return None;
    };
    let end_local = ends_on.at(end.0, end.1, 0, 0);
    Some(zone.to_zoned_datetime(end_local).ok()?.timestamp().as_microsecond())
}

/// The first moment after `now` (µs) at which the clock in `zone_name` reads `clock`
/// (`HH:MM`; 08:00 when empty): when a daily digest goes out.
pub fn next_at(clock: &str, zone_name: &str, now: i64) -> Option<i64> {
    let (hour, minute) = if clock.is_empty() { (8, 0) } else { parse_clock(clock)? };
    let zone = zone(zone_name)?;
    let local = Timestamp::from_microsecond(now).ok()?.to_zoned_datetime(zone.clone());
    let mut day = local.date();
    loop {
        let at = zone.to_zoned_datetime(day.at(hour, minute, 0, 0)).ok()?.timestamp().as_microsecond();
        if at > now {
            return Some(at);
        }
        day = day.tomorrow().ok()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_microsecond()
    }

    #[test]
    fn quiet_hours_hold_until_their_end_in_the_persons_zone() {
        // 22:00-07:00 in Berlin (UTC+1 in January).
        let until = quiet_until("22:00", "07:00", "Europe/Berlin", at("2026-01-15T22:30:00Z"));
        assert_eq!(until, Some(at("2026-01-16T06:00:00Z")), "23:30 local: until 07:00 local tomorrow");
        let until = quiet_until("22:00", "07:00", "Europe/Berlin", at("2026-01-16T04:00:00Z"));
        assert_eq!(until, Some(at("2026-01-16T06:00:00Z")), "05:00 local: until 07:00 local today");
        assert_eq!(quiet_until("22:00", "07:00", "Europe/Berlin", at("2026-01-16T12:00:00Z")), None);
        // Same-day hours, UTC by default.
        assert_eq!(quiet_until("12:00", "13:30", "", at("2026-01-16T12:10:00Z")), Some(at("2026-01-16T13:30:00Z")));
        assert_eq!(quiet_until("12:00", "13:30", "", at("2026-01-16T13:30:00Z")), None);
        // Unset, empty or equal bounds: never quiet.
        assert_eq!(quiet_until("", "", "", at("2026-01-16T12:10:00Z")), None);
        assert_eq!(quiet_until("09:00", "09:00", "", at("2026-01-16T09:00:00Z")), None);
    }

    #[test]
    fn a_digest_goes_out_at_the_next_digest_time_in_the_persons_zone() {
        // 08:00 in Tokyo (UTC+9) is 23:00 UTC the day before.
        assert_eq!(next_at("", "Asia/Tokyo", at("2026-01-15T22:00:00Z")), Some(at("2026-01-15T23:00:00Z")));
        assert_eq!(next_at("", "Asia/Tokyo", at("2026-01-15T23:00:00Z")), Some(at("2026-01-16T23:00:00Z")));
        assert_eq!(next_at("17:30", "", at("2026-01-15T18:00:00Z")), Some(at("2026-01-16T17:30:00Z")));
        assert_eq!(next_at("25:00", "", 0), None);
    }

    #[test]
    fn clocks_and_zones_are_checked() {
        assert_eq!(parse_clock("07:05"), Some((7, 5)));
        for bad in ["7:05", "24:00", "12:60", "ab:cd", "1200"] {
            assert_eq!(parse_clock(bad), None, "{bad}");
        }
        assert!(zone("America/New_York").is_some());
        assert!(zone("Mars/Olympus").is_none());
    }
}
