//! Promotion windows: when a target may be promoted, in a time zone of the team's choosing.
//! A window is open when one of its `allow` rules matches (or it has none) and none of its
//! `deny` rules does: deny wins. Times are read in the window's zone with jiff, so a rule for
//! 02:00–03:00 on the night the clocks change means what the local clock on the wall says.
//! Pure: "now" is given (the server's time, or `plan --at`).

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A named window, as a saved plan carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    pub name: String,
    /// An IANA time zone name (`Europe/Berlin`).
    pub time_zone: String,
    #[serde(default)]
    pub allow: Vec<Rule>,
    #[serde(default)]
    pub deny: Vec<Rule>,
}

/// A stretch of time: on these weekdays (all if none), between these dates (inclusive; any if
/// none), from this time of day up to that one (`24:00` for midnight at the end; all day if
/// none). A `from` later than its `to` runs across midnight (`22:00`–`06:00`): the days and
/// dates name the evening it starts on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_date: Option<String>,
}

/// How far ahead the next opening is looked for.
const HORIZON_DAYS: i64 = 400;

/// The widest span of server time a window is judged over; wider is "cannot tell the time",
/// which keeps the window shut.
const WIDEST_SPAN_MINUTES: i64 = 60;

impl Window {
    /// Whether the window is open at `at`.
    pub fn is_open(&self, at: Timestamp) -> Result<bool, String> {
        Ok(self.compile()?.is_open(at))
    }

    /// Whether the window is open for the whole of `from..=to`: the server's time is known
    /// only within such a span (its `Date` has whole seconds and comes after a round trip;
    /// readings may contradict each other). Rules change state on whole minutes, so the ends
    /// and each minute between them are enough.
    pub fn is_open_throughout(&self, from: Timestamp, to: Timestamp) -> Result<bool, String> {
        let compiled = self.compile()?;
        if to < from || to.duration_since(from).as_secs() > WIDEST_SPAN_MINUTES * 60 {
            return Ok(false);
        }
        let minute = jiff::SignedDuration::from_secs(60);
        let mut t = Timestamp::from_second(from.as_second().div_euclid(60) * 60 + 60)
            .map_err(|e| e.to_string())?;
        let mut open = compiled.is_open(from) && compiled.is_open(to);
        while open && t < to {
            open = compiled.is_open(t);
            t = t.checked_add(minute).map_err(|e| e.to_string())?;
        }
        Ok(open)
    }

    /// The first minute at or after `at` when the window is open, within about a year.
    pub fn next_open(&self, at: Timestamp) -> Result<Option<Timestamp>, String> {
        let compiled = self.compile()?;
        let minute = jiff::SignedDuration::from_secs(60);
        let mut t = Timestamp::from_second(at.as_second().div_euclid(60) * 60)
            .map_err(|e| e.to_string())?;
        if t < at {
            t = t.checked_add(minute).map_err(|e| e.to_string())?;
        }
        for _ in 0..HORIZON_DAYS * 24 * 60 {
            if compiled.is_open(t) {
                return Ok(Some(t));
            }
            t = t.checked_add(minute).map_err(|e| e.to_string())?;
        }
        Ok(None)
    }

    /// `Monday 2027-01-04 09:00 Europe/Berlin (2027-01-04 08:00 UTC)`; a zone on UTC's time
    /// then is not said twice: `Monday 2027-01-04 09:00 UTC`.
    pub fn describe(&self, at: Timestamp) -> String {
        let local = TimeZone::get(&self.time_zone).map(|zone| at.to_zoned(zone));
        match local {
            Ok(local) if local.offset().seconds() == 0 => {
                format!("{} {}", local.strftime("%A %Y-%m-%d %H:%M"), self.time_zone)
            }
            Ok(local) => format!(
                "{} {} ({} UTC)",
                local.strftime("%A %Y-%m-%d %H:%M"),
                self.time_zone,
                at.strftime("%Y-%m-%d %H:%M")
            ),
            Err(_) => at.to_string(),
        }
    }

    /// The window with its zone looked up and its rules read, once: `next_open` tries every
    /// minute of a year.
    fn compile(&self) -> Result<Compiled, String> {
        let zone = TimeZone::get(&self.time_zone)
            .map_err(|_| format!("`{}` is not an IANA time zone", self.time_zone))?;
        let rules = |rules: &[Rule]| {
            rules
                .iter()
                .map(Rule::compile)
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Compiled {
            zone,
            allow: rules(&self.allow)?,
            deny: rules(&self.deny)?,
        })
    }

    /// Whether every part of the window reads: the zone exists, days, times and dates parse.
    pub fn check(&self) -> Result<(), String> {
        self.compile().map(|_| ())
    }
}

/// Whether `name` is an IANA time zone this build knows.
pub fn check_zone(name: &str) -> Result<(), String> {
    TimeZone::get(name)
        .map(drop)
        .map_err(|_| format!("`{name}` is not an IANA time zone"))
}

struct Compiled {
    zone: TimeZone,
    allow: Vec<CompiledRule>,
    deny: Vec<CompiledRule>,
}

impl Compiled {
    fn is_open(&self, at: Timestamp) -> bool {
        let local = at.to_zoned(self.zone.clone());
        let matches = |rules: &[CompiledRule]| rules.iter().any(|r| r.matches(&local));
        (self.allow.is_empty() || matches(&self.allow)) && !matches(&self.deny)
    }
}

struct CompiledRule {
    days: Vec<Weekday>,
    from_date: Option<Date>,
    to_date: Option<Date>,
    from: i32,
    to: i32,
}

impl CompiledRule {
    /// On the wall clock of the window's zone, so that a night the clocks change is read as
    /// the people in that zone read it.
    fn matches(&self, local: &Zoned) -> bool {
        let date = local.date();
        let now = i32::from(local.time().hour()) * 60 + i32::from(local.time().minute());
        if self.from <= self.to {
            return self.starts_on(date) && self.from <= now && now < self.to;
        }
        // Across midnight: the evening belongs to today's stretch, the small hours to the
        // one that began yesterday evening.
        let yesterday = date.yesterday().ok();
        (now >= self.from && self.starts_on(date))
            || (now < self.to && yesterday.is_some_and(|d| self.starts_on(d)))
    }

    /// Whether a stretch of this rule begins on `date`.
    fn starts_on(&self, date: Date) -> bool {
        (self.days.is_empty() || self.days.contains(&date.weekday()))
            && self.from_date.is_none_or(|from| date >= from)
            && self.to_date.is_none_or(|to| date <= to)
    }
}

impl Rule {
    /// Whether the rule reads and can match some time.
    pub fn check(&self) -> Result<(), String> {
        self.compile().map(drop)
    }

    fn compile(&self) -> Result<CompiledRule, String> {
        let rule = CompiledRule {
            days: self
                .days
                .iter()
                .map(|d| weekday(d))
                .collect::<Result<_, _>>()?,
            from_date: self.from_date.as_deref().map(parse_date).transpose()?,
            to_date: self.to_date.as_deref().map(parse_date).transpose()?,
            from: self
                .from
                .as_deref()
                .map(time_of_day)
                .transpose()?
                .unwrap_or(0),
            to: self
                .to
                .as_deref()
                .map(time_of_day)
                .transpose()?
                .unwrap_or(24 * 60),
        };
        if let (Some(from), Some(to)) = (&self.from, &self.to)
            && rule.from == rule.to
        {
            return Err(format!(
                "`from` {from} and `to` {to} are the same time: the rule matches no time (leave both out for all day)"
            ));
        }
        if let (Some(from), Some(to)) = (rule.from_date, rule.to_date)
            && from > to
        {
            return Err(format!(
                "`fromDate` {from} is after `toDate` {to}: no day is between them (a stretch across midnight is written with `from` and `to`)"
            ));
        }
        Ok(rule)
    }
}

/// `mon` … `sun`, or the whole name, in any case.
pub fn weekday(name: &str) -> Result<Weekday, String> {
    let lower = name.to_ascii_lowercase();
    let day = match lower.get(..3) {
        Some("mon") => Weekday::Monday,
        Some("tue") => Weekday::Tuesday,
        Some("wed") => Weekday::Wednesday,
        Some("thu") => Weekday::Thursday,
        Some("fri") => Weekday::Friday,
        Some("sat") => Weekday::Saturday,
        Some("sun") => Weekday::Sunday,
        _ => return Err(format!("`{name}` is not a weekday (mon … sun)")),
    };
    Ok(day)
}

/// `HH:MM` (or `24:00`) in minutes since midnight.
pub fn time_of_day(text: &str) -> Result<i32, String> {
    if text == "24:00" {
        return Ok(24 * 60);
    }
    let time: Time = text
        .parse()
        .map_err(|_| format!("`{text}` is not a time of day such as 09:30"))?;
    Ok(i32::from(time.hour()) * 60 + i32::from(time.minute()))
}

pub fn parse_date(text: &str) -> Result<Date, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a date such as 2026-12-24"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn office_hours() -> Window {
        Window {
            name: "office".into(),
            time_zone: "Europe/Berlin".into(),
            allow: vec![Rule {
                days: vec![
                    "mon".into(),
                    "tue".into(),
                    "wed".into(),
                    "thu".into(),
                    "fri".into(),
                ],
                from: Some("09:00".into()),
                to: Some("17:00".into()),
                ..Rule::default()
            }],
            deny: vec![
                Rule {
                    days: vec!["fri".into()],
                    from: Some("15:00".into()),
                    ..Rule::default()
                },
                Rule {
                    from_date: Some("2026-12-24".into()),
                    to_date: Some("2027-01-01".into()),
                    ..Rule::default()
                },
            ],
        }
    }

    #[test]
    fn allow_by_weekday_and_time_deny_wins_and_the_next_opening_is_found() {
        let w = office_hours();
        // Thursday 2026-12-03 10:00 in Berlin is 09:00 UTC.
        assert!(w.is_open(at("2026-12-03T09:00:00Z")).unwrap());
        // Friday 16:00 Berlin: allowed by office hours, denied after 15:00 on Fridays.
        assert!(!w.is_open(at("2026-12-04T15:00:00Z")).unwrap());
        // The holidays deny everything; the next opening is Monday 2027-01-04 09:00 Berlin.
        let next = w.next_open(at("2026-12-23T17:00:00Z")).unwrap().unwrap();
        assert_eq!(next, at("2027-01-04T08:00:00Z"));
        assert_eq!(
            w.describe(next),
            "Monday 2027-01-04 09:00 Europe/Berlin (2027-01-04 08:00 UTC)"
        );
        let utc = Window {
            time_zone: "UTC".into(),
            ..office_hours()
        };
        assert_eq!(
            utc.describe(next),
            "Monday 2027-01-04 08:00 UTC",
            "said once"
        );
    }

    /// Found by the explorer (seed 10032): a stale `Date` put the earliest server time two
    /// minutes back, before a deny rule began, and a call left inside it. The window is
    /// judged over the whole span the server's time may be in.
    #[test]
    fn a_window_lets_through_only_when_open_for_the_whole_span_of_server_time() {
        let w = office_hours();
        // (from, to, open throughout?)
        let table = [
            ("2026-12-03T09:00:00Z", "2026-12-03T09:00:00Z", true),
            // Friday: the span runs into the 15:00 Berlin deny rule.
            ("2026-12-04T13:58:30Z", "2026-12-04T14:00:10Z", false),
            ("2026-12-04T13:58:30Z", "2026-12-04T13:59:59Z", true),
            // Wider than an hour: cannot tell the time, so shut.
            ("2026-12-03T09:00:00Z", "2026-12-03T10:00:01Z", false),
            // A span the wrong way round.
            ("2026-12-03T09:00:01Z", "2026-12-03T09:00:00Z", false),
        ];
        for (from, to, open) in table {
            assert_eq!(
                w.is_open_throughout(at(from), at(to)).unwrap(),
                open,
                "{from}..{to}"
            );
        }
        // Open at both ends, shut for one minute between them.
        let one_minute = Window {
            name: "blink".into(),
            time_zone: "UTC".into(),
            allow: Vec::new(),
            deny: vec![Rule {
                from: Some("10:00".into()),
                to: Some("10:01".into()),
                ..Rule::default()
            }],
        };
        let (from, to) = (at("2026-12-03T09:59:30Z"), at("2026-12-03T10:01:30Z"));
        assert!(one_minute.is_open(from).unwrap() && one_minute.is_open(to).unwrap());
        assert!(!one_minute.is_open_throughout(from, to).unwrap());
    }

    #[test]
    fn a_rule_whose_from_is_later_than_its_to_runs_across_midnight() {
        let freeze = |days: Vec<String>| Window {
            name: "nightly".into(),
            time_zone: "Europe/Berlin".into(),
            allow: Vec::new(),
            deny: vec![Rule {
                days,
                from: Some("22:00".into()),
                to: Some("06:00".into()),
                ..Rule::default()
            }],
        };
        let every_night = freeze(Vec::new());
        // (UTC instant, Berlin wall time, open?)
        let table = [
            ("2026-12-03T20:59:00Z", "21:59", true),
            ("2026-12-03T21:00:00Z", "22:00", false),
            ("2026-12-03T23:00:00Z", "00:00", false),
            ("2026-12-04T04:59:00Z", "05:59", false),
            ("2026-12-04T05:00:00Z", "06:00", true),
            // The nights the clocks change: 00:30 wall time is inside the freeze either way.
            ("2027-03-27T23:30:00Z", "00:30 before spring forward", false),
            ("2027-03-28T03:59:00Z", "05:59 summer time", false),
            ("2027-03-28T04:00:00Z", "06:00 summer time", true),
            ("2027-10-30T22:30:00Z", "00:30 before fall back", false),
            ("2027-10-31T04:59:00Z", "05:59 winter time", false),
            ("2027-10-31T05:00:00Z", "06:00 winter time", true),
        ];
        for (instant, wall, open) in table {
            assert_eq!(every_night.is_open(at(instant)).unwrap(), open, "{wall}");
        }
        // Days name the evening a stretch starts on: Friday night runs into Saturday morning.
        let friday_night = freeze(vec!["fri".into()]);
        assert!(
            !friday_night.is_open(at("2026-12-04T23:30:00Z")).unwrap(),
            "Sat 00:30"
        );
        assert!(
            friday_night.is_open(at("2026-12-03T23:30:00Z")).unwrap(),
            "Fri 00:30"
        );
        assert_eq!(
            friday_night.next_open(at("2026-12-04T21:00:00Z")).unwrap(),
            Some(at("2026-12-05T05:00:00Z")),
            "the freeze that starts Friday 22:00 ends Saturday 06:00"
        );
    }

    #[test]
    fn a_from_date_after_its_to_date_is_an_error() {
        let backwards = Window {
            name: "holidays".into(),
            time_zone: "UTC".into(),
            allow: Vec::new(),
            deny: vec![Rule {
                from_date: Some("2027-01-05".into()),
                to_date: Some("2026-12-20".into()),
                ..Rule::default()
            }],
        };
        let error = backwards.check().unwrap_err();
        assert!(
            error.contains("`fromDate` 2027-01-05 is after `toDate` 2026-12-20"),
            "{error}"
        );
    }

    #[test]
    fn a_window_of_two_to_three_at_night_on_the_nights_the_clocks_change() {
        let night = Window {
            name: "night".into(),
            time_zone: "Europe/Berlin".into(),
            allow: vec![Rule {
                from: Some("02:00".into()),
                to: Some("03:00".into()),
                ..Rule::default()
            }],
            deny: Vec::new(),
        };
        // 2027-03-28: at 02:00 the clocks jump to 03:00, so the window does not open that
        // night; it next opens on the 29th at 02:00, which is then 00:00 UTC (summer time).
        let next = night
            .next_open(at("2027-03-27T23:30:00Z"))
            .unwrap()
            .unwrap();
        assert_eq!(next, at("2027-03-29T00:00:00Z"));
        // 2027-10-31: 02:00–03:00 happens twice (summer, then winter time): open for both,
        // 00:00–01:00 and 01:00–02:00 UTC.
        assert!(night.is_open(at("2027-10-31T00:30:00Z")).unwrap());
        assert!(night.is_open(at("2027-10-31T01:30:00Z")).unwrap());
        assert!(!night.is_open(at("2027-10-31T02:30:00Z")).unwrap());
    }
}
