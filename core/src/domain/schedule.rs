//! The program as its screens show it: the calendar of weeks (dates, phase, critique, feedback
//! window), the critique under way or next, and the prompt library with its filters. Pure: the
//! caller passes the blueprint, the pack and the instant.

use chrono::{DateTime, Days, NaiveDate, Utc};

use super::blueprint::{Blueprint, Phase};
use super::prompt_pack::{Prompt, PromptPack};

/// One week of the program (week 0 is the orientation).
#[derive(Debug, Clone, PartialEq)]
pub struct WeekSchedule {
    pub week: u32,
    pub phase: Phase,
    pub first_date: NaiveDate,
    pub last_date: NaiveDate,
    /// None in week 0, which has no critique.
    pub critique: Option<CritiqueSlot>,
    /// When the week's feedback threads close; none in week 0, whose threads never close.
    pub feedback_closes_at: Option<DateTime<Utc>>,
}

/// A weekly critique meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CritiqueSlot {
    pub week: u32,
    pub starts_at: DateTime<Utc>,
    pub minutes: u32,
}

impl CritiqueSlot {
    pub fn ends_at(&self) -> DateTime<Utc> {
        self.starts_at + chrono::Duration::minutes(i64::from(self.minutes))
    }
}

/// Every week of the program, orientation first.
pub fn weeks(blueprint: &Blueprint) -> Vec<WeekSchedule> {
    let critiques: Vec<CritiqueSlot> = critiques(blueprint).collect();
    (0..=blueprint.weeks)
        .map(|week| {
            let first_date = blueprint.date_of_day(blueprint.first_day_of_week(week));
            let days = blueprint.days_in_week(week).max(1);
            WeekSchedule {
                week,
                phase: blueprint.phase_of_week(week),
                first_date,
                last_date: first_date + Days::new(u64::from(days - 1)),
                critique: critiques.iter().find(|c| c.week == week).copied(),
                feedback_closes_at: blueprint.feedback_closes_at(week),
            }
        })
        .collect()
}

fn critiques(blueprint: &Blueprint) -> impl Iterator<Item = CritiqueSlot> + '_ {
    let minutes = blueprint.critique.minutes;
    blueprint.critique_starts().map(move |(week, starts_at)| CritiqueSlot { week, starts_at, minutes })
}

/// The critique under way at `now`, else the next one; none after the last.
pub fn next_critique(blueprint: &Blueprint, now: DateTime<Utc>) -> Option<CritiqueSlot> {
    critiques(blueprint).find(|c| c.ends_at() > now)
}

/// What a learner browsing the library asks for; every part is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LibraryFilter {
    pub week: Option<u32>,
    /// A tag, compared without regard to case.
    pub tag: Option<String>,
    /// Words that must all appear in the title, the body or a tag (any case).
    pub text: Option<String>,
}

/// The pack's prompts that match `filter`, in program order (week, then day).
pub fn library<'a>(pack: &'a PromptPack, filter: &LibraryFilter) -> Vec<&'a Prompt> {
    let tag = filter.tag.as_deref().map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty());
    let words: Vec<String> =
        filter.text.as_deref().unwrap_or_default().split_whitespace().map(str::to_lowercase).collect();
    let mut found: Vec<&Prompt> = pack
        .prompts
        .iter()
        .filter(|p| filter.week.is_none_or(|week| p.week == week))
        .filter(|p| tag.as_ref().is_none_or(|tag| p.tags.iter().any(|t| t.to_lowercase() == *tag)))
        .filter(|p| {
            let haystack = format!("{}\n{}\n{}", p.title, p.body, p.tags.join(" ")).to_lowercase();
            words.iter().all(|word| haystack.contains(word.as_str()))
        })
        .collect();
    found.sort_by_key(|p| (p.week, p.day));
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::prompt_pack::parse_pack;
    use chrono::{NaiveTime, TimeZone, Weekday};

    fn blueprint() -> Blueprint {
        let mut b = Blueprint::default_90_days(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(), chrono_tz::Europe::Berlin);
        b.critique.weekday = Weekday::Thu;
        b.critique.time = NaiveTime::from_hms_opt(17, 0, 0).unwrap();
        b
    }

    #[test]
    fn weeks_cover_the_program_without_gaps_and_critiques_keep_their_wall_clock_across_dst() {
        let b = blueprint();
        let weeks = weeks(&b);
        assert_eq!(weeks.len() as u32, b.weeks + 1);
        assert_eq!(weeks[0].first_date, b.start_date);
        assert_eq!((weeks[0].phase, weeks[0].critique, weeks[0].feedback_closes_at), (Phase::Orientation, None, None));
        for pair in weeks.windows(2) {
            assert_eq!(pair[0].last_date + Days::new(1), pair[1].first_date, "week {} follows", pair[1].week);
        }
        assert_eq!(weeks.last().unwrap().last_date, b.end_date());
        // Berlin moves to summer time on 29 March 2026: 17:00 local is 16:00 UTC before, 15:00 after.
        let on = |date: NaiveDate| {
            let local = |c: &CritiqueSlot| c.starts_at.with_timezone(&chrono_tz::Europe::Berlin).date_naive();
            weeks.iter().find_map(|w| w.critique.filter(|c| local(c) == date)).expect("a critique that day")
        };
        let thursday = |day| NaiveDate::from_ymd_opt(2026, 3, 26).unwrap() + Days::new(day);
        assert_eq!(on(thursday(0)).starts_at, Utc.with_ymd_and_hms(2026, 3, 26, 16, 0, 0).unwrap());
        assert_eq!(on(thursday(7)).starts_at, Utc.with_ymd_and_hms(2026, 4, 2, 15, 0, 0).unwrap());
        for week in &weeks[1..] {
            let critique = week.critique.expect("every practice week has a critique");
            let day = critique.starts_at.with_timezone(&chrono_tz::Europe::Berlin).date_naive();
            assert!(week.first_date <= day && day <= week.last_date, "week {}'s critique lies in it", week.week);
            assert!(week.feedback_closes_at.unwrap() > critique.starts_at);
        }
    }

    #[test]
    fn the_next_critique_is_the_one_under_way_until_it_ends() {
        let b = blueprint();
        let first = next_critique(&b, Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()).unwrap();
        assert_eq!(first.week, 1);
        let during = first.starts_at + chrono::Duration::minutes(5);
        assert_eq!(next_critique(&b, during), Some(first));
        let next = next_critique(&b, first.ends_at()).unwrap();
        assert_eq!(next.week, 2);
        assert_eq!(next_critique(&b, Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()), None);
    }

    #[test]
    fn the_library_filters_by_week_tag_and_words_in_program_order() {
        let pack = parse_pack(crate::DEFAULT_PROMPT_PACK_NAME, crate::DEFAULT_PROMPT_PACK).unwrap();
        let everything = library(&pack, &LibraryFilter::default());
        assert_eq!(everything.len(), pack.prompts.len());
        assert!(everything.windows(2).all(|w| (w[0].week, w[0].day) <= (w[1].week, w[1].day)));

        let week_two = library(&pack, &LibraryFilter { week: Some(2), ..Default::default() });
        assert!(!week_two.is_empty() && week_two.iter().all(|p| p.week == 2));

        let tag = pack.prompts.iter().flat_map(|p| p.tags.iter()).next().expect("the default pack has tags").clone();
        let tagged = library(&pack, &LibraryFilter { tag: Some(tag.to_uppercase()), ..Default::default() });
        assert!(!tagged.is_empty() && tagged.iter().all(|p| p.tags.contains(&tag)));

        let prompt = &pack.prompts[3];
        let word = prompt.title.split_whitespace().max_by_key(|w| w.len()).unwrap().to_uppercase();
        let found = library(&pack, &LibraryFilter { text: Some(word.clone()), ..Default::default() });
        assert!(found.iter().any(|p| p.id == prompt.id), "{word} finds {}", prompt.id);
        let none = library(&pack, &LibraryFilter { text: Some(format!("{word} zqxjv")), ..Default::default() });
        assert!(none.is_empty(), "every word must appear");
    }
}
