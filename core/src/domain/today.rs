//! Which practice a learner sees today.
//!
//! **Missed days: move on.** Today's prompt is always the one placed on today's program day, so a
//! learner who skipped two days is back in step with their cohort (which discusses the same
//! week's prompts at the critique) the moment they open the app. Prompts missed earlier in the
//! *current* week are offered as optional catch-ups; older ones stay in the library but are not
//! pushed. The alternative — always serving the next unseen prompt — lets a learner drift weeks
//! behind the cohort they are meant to give feedback to.

use std::collections::HashSet;

use chrono::NaiveDate;

use super::blueprint::{Blueprint, ProgramPosition};
use super::prompt_pack::{Prompt, PromptPack};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TodayPlan<'a> {
    pub position: ProgramPosition,
    /// Today's prompt; `None` before the start and after the end of the program.
    pub prompt: Option<&'a Prompt>,
    /// Earlier prompts of this week not yet completed, oldest first.
    pub catch_up: Vec<&'a Prompt>,
}

/// Plans today for a learner-local `date`, given the ids of prompts the learner already completed.
pub fn plan_today<'a>(
    blueprint: &Blueprint,
    pack: &'a PromptPack,
    date: NaiveDate,
    completed: &HashSet<String>,
) -> TodayPlan<'a> {
    let position = blueprint.position_on(date);
    let (Some(week), Some(day)) = (position.week, position.day_of_week) else {
        return TodayPlan { position, prompt: None, catch_up: Vec::new() };
    };
    let catch_up = (1..day)
        .filter_map(|earlier| pack.prompt_for(week, earlier))
        .filter(|prompt| !completed.contains(&prompt.id))
        .collect();
    TodayPlan { position, prompt: pack.prompt_for(week, day), catch_up }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::blueprint::Phase;
    use crate::domain::prompt_pack::parse_pack;

    fn fixtures() -> (Blueprint, PromptPack) {
        let pack = parse_pack(crate::DEFAULT_PROMPT_PACK_NAME, crate::DEFAULT_PROMPT_PACK).unwrap();
        let blueprint = Blueprint::default_90_days(NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(), chrono_tz::UTC);
        (blueprint, pack)
    }

    #[test]
    fn after_missed_days_today_moves_on_and_offers_this_weeks_catch_ups() {
        let (blueprint, pack) = fixtures();
        // Week 1 runs 11–17 January. Practised on the 11th only; today is the 14th (week 1 day 4).
        let completed: HashSet<String> = [pack.prompt_for(1, 1).unwrap().id.clone()].into();
        let today = NaiveDate::from_ymd_opt(2026, 1, 14).unwrap();
        let plan = plan_today(&blueprint, &pack, today, &completed);
        assert_eq!(plan.prompt.unwrap().id, pack.prompt_for(1, 4).unwrap().id);
        let catch_up: Vec<_> = plan.catch_up.iter().map(|p| (p.week, p.day)).collect();
        assert_eq!(catch_up, vec![(1, 2), (1, 3)]);
        // A new week starts clean: last week's misses are not pushed.
        let next_week = plan_today(&blueprint, &pack, NaiveDate::from_ymd_opt(2026, 1, 18).unwrap(), &completed);
        assert_eq!((next_week.position.week, next_week.catch_up.len()), (Some(2), 0));
    }

    #[test]
    fn no_prompt_outside_the_program() {
        let (blueprint, pack) = fixtures();
        let before = plan_today(&blueprint, &pack, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), &HashSet::new());
        assert_eq!((before.prompt, before.position.phase), (None, Phase::BeforeStart));
        let after = plan_today(&blueprint, &pack, blueprint.end_date().succ_opt().unwrap(), &HashSet::new());
        assert_eq!((after.prompt, after.position.phase), (None, Phase::Finished));
    }
}
