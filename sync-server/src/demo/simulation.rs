//! What each simulated person does on a program day, deterministic from the seed: when they
//! practise (if at all), whether they are offline, what they share, review, rate and write.
//! Their personas ([`super::personas`]) differ enough that the dashboard shows real differences
//! and at-risk members.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use microcohort_core::domain::blueprint::{Blueprint, Phase};
use microcohort_core::domain::practice::{PracticeOutcome, TransferEvidence, TransferKind};
use microcohort_core::domain::roles::WeeklyRole;
use microcohort_core::domain::time::resolve_wall_clock;
use microcohort_core::store::practice::PracticeLog;
use microcohort_core::{Client, EntryRef, FeedbackInput, ManualClock, WorkKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::DemoError;
use super::personas::{PersonSpec, Persona, TRAVELLER_DESTINATION};

/// One simulated device and the person holding it.
pub struct Member {
    pub name: &'static str,
    pub persona: Persona,
    pub client: Client,
    pub clock: ManualClock,
    pub user_id: String,
    zone: Tz,
    rng: StdRng,
    /// Completed practices by local date, as the simulation logged them.
    pub practised_on: HashSet<NaiveDate>,
    shared_weeks: HashSet<u32>,
    reviewed: HashSet<String>,
    rated: HashSet<String>,
    /// For a facilitator: when each member was last nudged with a private note.
    nudged_on: HashMap<String, NaiveDate>,
}

impl Member {
    pub fn new(spec: &PersonSpec, client: Client, clock: ManualClock, user_id: String, seed: u64, index: u64) -> Self {
        let zone = spec.time_zone.parse().unwrap_or(chrono_tz::UTC);
        Self {
            name: spec.name,
            persona: spec.persona,
            client,
            clock,
            user_id,
            zone,
            rng: StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            practised_on: HashSet::new(),
            shared_weeks: HashSet::new(),
            reviewed: HashSet::new(),
            rated: HashSet::new(),
            nudged_on: HashMap::new(),
        }
    }

    pub fn first_name(&self) -> &'static str {
        self.name.split(' ').next().unwrap_or(self.name)
    }

    fn at(&self, instant: DateTime<Utc>) {
        self.clock.set(instant);
    }
}

/// What happened on one simulated day, for the progress line and the totals.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub practices: u32,
    pub transfer: u32,
    pub shares: u32,
    pub feedback: u32,
    pub ratings: u32,
    pub replies: u32,
    pub synthesis_edits: u32,
    pub syncs: u32,
    pub offline: Vec<&'static str>,
    /// Private notes the facilitator sent members at risk.
    pub nudges: u32,
    /// Agenda items the peer leading a critique put on it.
    pub agenda_items: u32,
    /// Practices of the control arm's learners (not in `practices`, which is the cohort's).
    pub control_practices: u32,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.practices += other.practices;
        self.transfer += other.transfer;
        self.shares += other.shares;
        self.feedback += other.feedback;
        self.ratings += other.ratings;
        self.replies += other.replies;
        self.synthesis_edits += other.synthesis_edits;
        self.syncs += other.syncs;
        self.nudges += other.nudges;
        self.agenda_items += other.agenda_items;
        self.control_practices += other.control_practices;
    }
}

/// What every simulated day shares: the program and the real "now" that nothing may pass.
pub struct Program {
    pub blueprint: Blueprint,
    pub days: u32,
    /// Rubric size per prompt id, for the criteria a reviewer addresses.
    pub rubrics: HashMap<String, u32>,
    pub real_now: DateTime<Utc>,
    /// The week a learner leads the critique, and who (an index into the learners).
    pub peer_led: Option<(u32, usize)>,
}

/// Day `day` (1-based) for a learner: offline or not, practise, share, review, rate, reply,
/// write the synthesis, sync. Anything that would happen after the real "now" has not happened
/// yet and is left out.
pub fn live_day(member: &mut Member, program: &Program, day: u32, tally: &mut Tally) -> Result<(), DemoError> {
    let blueprint = &program.blueprint;
    if member.persona == Persona::LateNightTraveller && day == program.days / 2 + 1 {
        member.client.set_time_zone(TRAVELLER_DESTINATION)?;
        member.zone = TRAVELLER_DESTINATION.parse().unwrap_or(member.zone);
    }
    let date = blueprint.date_of_day(day);
    let (time, after_midnight) = member.persona.session_time(&mut member.rng);
    let wall_date = if after_midnight { date + Days::new(1) } else { date };
    let session = resolve_wall_clock(wall_date, time, member.zone);
    let offline = member.rng.random_bool(member.persona.offline_chance());
    let practises = member.rng.random_bool(member.persona.practice_chance(day, program.days));
    if session > program.real_now {
        return Ok(());
    }
    member.at(session);
    if offline {
        tally.offline.push(member.first_name());
    } else {
        sync(member, tally)?;
    }
    let position = blueprint.position_on(date);
    let week = position.week.unwrap_or(0);
    if practises {
        practise(member, program, date, week, tally)?;
    }
    if practises || member.rng.random_bool(member.persona.visit_chance(day, program.days)) {
        review(member, program, week, tally)?;
        rate_and_reply(member, week, tally)?;
        if position.day_of_week.is_some_and(|d| d >= 5) {
            write_synthesis(member, week, tally)?;
        }
    }
    if !offline {
        sync(member, tally)?;
    }
    Ok(())
}

/// Day `day` for a control-arm learner: the practice loop alone (offline or not, practise, sync).
pub fn live_day_alone(member: &mut Member, program: &Program, day: u32, tally: &mut Tally) -> Result<(), DemoError> {
    let date = program.blueprint.date_of_day(day);
    let (time, _) = member.persona.session_time(&mut member.rng);
    let session = resolve_wall_clock(date, time, member.zone);
    let offline = member.rng.random_bool(member.persona.offline_chance());
    let practises = member.rng.random_bool(member.persona.practice_chance(day, program.days));
    if session > program.real_now || !practises {
        return Ok(());
    }
    member.at(session);
    // Counted apart: the day's line and the totals are the cohort's.
    let mut alone = Tally::default();
    log_practice(member, date, &mut alone)?;
    tally.control_practices += alone.practices;
    if offline {
        return Ok(());
    }
    sync(member, tally)
}

/// The lead, on the critique's day, puts up to three pieces of the week's shared work on its agenda.
fn lead_the_critique(lead: &Member, week: u32, at: DateTime<Utc>, tally: &mut Tally) -> Result<(), DemoError> {
    lead.at(at - chrono::Duration::hours(4));
    sync(lead, tally)?;
    let rows = lead.client.week_rows(week)?;
    for submission in rows.submissions.iter().filter(|s| !s.meta.retracted).take(3) {
        let entry = EntryRef { week, key: submission.meta.key.clone() };
        lead.client.add_agenda_item(&entry, &format!("{}: what would you try next?", submission.title))?;
        tally.agenda_items += 1;
    }
    sync(lead, tally)
}

/// A private note to each member the dashboard shows at risk, at most once a week each.
fn nudge_members_at_risk(facilitator: &mut Member, date: NaiveDate, tally: &mut Tally) -> Result<(), DemoError> {
    let report = facilitator.client.cohort_dashboard()?;
    for member in report.members.iter().filter(|m| !m.at_risk.is_empty() && !m.left) {
        let recent = facilitator.nudged_on.get(&member.user_id).is_some_and(|last| (date - *last).num_days() < 7);
        if recent {
            continue;
        }
        let first_name = member.display_name.split(' ').next().unwrap_or(&member.display_name);
        let note = format!(
            "Hi {first_name}, I noticed a quieter week. Ten minutes today is plenty; I'm here if anything is in the way."
        );
        facilitator.client.send_note(&member.user_id, &note)?;
        facilitator.nudged_on.insert(member.user_id.clone(), date);
        tally.nudges += 1;
    }
    Ok(())
}

fn sync(member: &Member, tally: &mut Tally) -> Result<(), DemoError> {
    member.client.sync_with_retry(5)?;
    tally.syncs += 1;
    Ok(())
}

/// One practice session of 8–15 minutes, sometimes with transfer evidence.
fn log_practice(member: &mut Member, date: NaiveDate, tally: &mut Tally) -> Result<PracticeLog, DemoError> {
    let session = member.client.start_practice(None)?;
    let seconds = member.rng.random_range(8 * 60..=15 * 60u32);
    let transfer = member.rng.random_bool(0.15).then(|| TransferEvidence {
        kind: if member.rng.random_bool(0.7) { TransferKind::AppliedAtWork } else { TransferKind::Portfolio },
        note: "Tried it in a real conversation this week.".into(),
        link: None,
    });
    tally.transfer += u32::from(transfer.is_some());
    let outcome =
        PracticeOutcome { duration_secs: Some(seconds), reflection: format!("What I noticed on {date}."), transfer };
    member.clock.advance(chrono::Duration::seconds(i64::from(seconds)));
    let log = member.client.finish_practice(session.id, &outcome)?;
    member.practised_on.insert(log.local_date);
    tally.practices += 1;
    Ok(log)
}

fn practise(
    member: &mut Member,
    program: &Program,
    date: NaiveDate,
    week: u32,
    tally: &mut Tally,
) -> Result<(), DemoError> {
    let log = log_practice(member, date, tally)?;
    let phase = program.blueprint.phase_of_week(week);
    let role = member.client.my_role(week)?;
    let practitioner = match phase {
        Phase::Practice | Phase::Consolidation => true,
        Phase::RoleRotation => role == Some(WeeklyRole::Practitioner),
        _ => false,
    };
    if practitioner && !member.shared_weeks.contains(&week) && member.rng.random_bool(member.persona.share_chance()) {
        if phase == Phase::Consolidation && member.rng.random_bool(0.5) {
            member.client.share_work(
                WorkKind::Capstone,
                "Capstone: a small experiment at work",
                "What I tried, what happened, what I would change.",
                None,
                &[],
            )?;
        } else {
            let prompt = &log.prompt.prompt_id;
            member.client.share_practice(log.id, &format!("Week {week}: {prompt}"), "What I tried and how it went.")?;
        }
        member.shared_weeks.insert(week);
        tally.shares += 1;
    }
    Ok(())
}

/// Reviews owed this week and last week (reviews may be late), and for generous reviewers one
/// more unassigned submission.
fn review(member: &mut Member, program: &Program, week: u32, tally: &mut Tally) -> Result<(), DemoError> {
    for w in [week.saturating_sub(1), week] {
        if w == 0 || program.blueprint.phase_of_week(w) == Phase::Orientation {
            continue;
        }
        let assigned: HashSet<String> = member
            .client
            .review_assignments(w)?
            .into_iter()
            .filter(|a| a.reviewers.contains(&member.user_id))
            .map(|a| a.practitioner)
            .collect();
        let rows = member.client.week_rows(w)?;
        let mut extra = member.persona == Persona::GenerousReviewer && w == week;
        for submission in rows.submissions.iter().filter(|s| !s.meta.retracted && s.meta.author != member.user_id) {
            if member.reviewed.contains(&submission.meta.key) {
                continue;
            }
            let wanted = if assigned.contains(&submission.meta.author) {
                member.rng.random_bool(member.persona.review_chance())
            } else {
                // One unassigned submission a day for a generous reviewer.
                std::mem::take(&mut extra)
            };
            if !wanted {
                continue;
            }
            let rubric = submission.prompt_id.as_ref().and_then(|p| program.rubrics.get(p)).copied().unwrap_or(0);
            let generous = member.persona == Persona::GenerousReviewer;
            let addressed = if generous { rubric } else { member.rng.random_range(0..=rubric.min(2)) };
            let input = FeedbackInput {
                body: format!("{} — what worked for me in \"{}\"", member.first_name(), submission.title),
                suggestion: member
                    .rng
                    .random_bool(member.persona.suggestion_chance())
                    .then(|| "Next time, try naming the one thing you want them to do differently.".to_owned()),
                criteria: (0..addressed).collect(),
            };
            member.client.give_feedback(&EntryRef { week: w, key: submission.meta.key.clone() }, &input)?;
            member.reviewed.insert(submission.meta.key.clone());
            tally.feedback += 1;
        }
    }
    Ok(())
}

/// Rates feedback received on one's own submissions (concrete suggestions rate higher) and
/// sometimes replies.
fn rate_and_reply(member: &mut Member, week: u32, tally: &mut Tally) -> Result<(), DemoError> {
    for w in [week.saturating_sub(1), week] {
        if w == 0 {
            continue;
        }
        let rows = member.client.week_rows(w)?;
        let mine: HashSet<&str> =
            rows.submissions.iter().filter(|s| s.meta.author == member.user_id).map(|s| s.meta.key.as_str()).collect();
        for feedback in rows.feedback.iter().filter(|f| mine.contains(f.submission.as_str())) {
            if member.rated.contains(&feedback.meta.key) || !member.rng.random_bool(0.8) {
                continue;
            }
            let criteria = feedback.criteria.len();
            let concrete = feedback.suggestion.is_some() || criteria >= 2;
            let score = if concrete { member.rng.random_range(4..=5) } else { member.rng.random_range(2..=4) };
            let entry = EntryRef { week: w, key: feedback.meta.key.clone() };
            member.client.rate_feedback(&entry, score)?;
            member.rated.insert(feedback.meta.key.clone());
            tally.ratings += 1;
            if member.rng.random_bool(0.3) {
                member.client.reply(&entry, None, "Thanks — I will try that tomorrow.")?;
                tally.replies += 1;
            }
        }
    }
    Ok(())
}

/// Synthesizers of a rotation week add their line to the shared synthesis late in the week.
fn write_synthesis(member: &mut Member, week: u32, tally: &mut Tally) -> Result<(), DemoError> {
    if member.client.my_role(week)? != Some(WeeklyRole::Synthesizer) || !member.rng.random_bool(0.5) {
        return Ok(());
    }
    let current = member.client.synthesis(week)?;
    if current.contains(member.first_name()) {
        return Ok(());
    }
    let line =
        format!("{}: the cohort's strongest pattern this week was asking before telling.\n", member.first_name());
    member.client.edit_synthesis(week, current.chars().count(), 0, &line)?;
    tally.synthesis_edits += 1;
    Ok(())
}

/// The facilitator's first evening: she hands one critique to a learner (the first rotation week,
/// or week 1 in a short run), with the meeting link; that learner writes its agenda.
pub fn hand_over_a_critique(facilitator: &Member, learners: &[Member], program: &Program) -> Result<(), DemoError> {
    let Some((week, lead)) = program.peer_led else { return Ok(()) };
    let evening = resolve_wall_clock(
        program.blueprint.start_date,
        NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default(),
        facilitator.zone,
    );
    facilitator.at(evening.min(program.real_now));
    // Her roster must hold everyone who joined before she names one of them.
    facilitator.client.sync_with_retry(5)?;
    let change = microcohort_core::domain::critique_week::CritiqueWeekChange {
        week,
        moved_to: None,
        link: Some(format!("https://meet.example.org/demo-week-{week}")),
        lead: Some(learners[lead].user_id.clone()),
    };
    facilitator.client.change_critique_week(&change)?;
    Ok(())
}

/// The facilitator's evening: always online; after each weekly critique records who attended
/// (members who practised that week) and opens the week's synthesis. Each evening she reads her
/// dashboard and nudges each member at risk (at most weekly) with a private note. Before the
/// critique a learner leads, that learner puts the week's shared work on its agenda.
pub fn facilitate_day(
    facilitator: &mut Member,
    learners: &[Member],
    program: &Program,
    day: u32,
    tally: &mut Tally,
) -> Result<(), DemoError> {
    let blueprint = &program.blueprint;
    let date = blueprint.date_of_day(day);
    let evening = resolve_wall_clock(date, NaiveTime::from_hms_opt(21, 0, 0).unwrap_or_default(), facilitator.zone);
    if evening > program.real_now {
        return Ok(());
    }
    facilitator.at(evening);
    sync(facilitator, tally)?;
    let week = blueprint.position_on(date).week.unwrap_or(0);
    if blueprint.critique_date(week) == Some(date)
        && let Some((led_week, lead)) = program.peer_led
        && led_week == week
    {
        lead_the_critique(&learners[lead], week, evening, tally)?;
        sync(facilitator, tally)?;
    }
    nudge_members_at_risk(facilitator, date, tally)?;
    if blueprint.critique_date(week) == Some(date) {
        let since = date - Days::new(6);
        for learner in learners {
            let present = learner.practised_on.iter().any(|d| (since..=date).contains(d));
            facilitator.client.record_attendance(week, &learner.user_id, present)?;
        }
        let current = facilitator.client.synthesis(week)?;
        let opening = format!("Week {week} critique: what we tried, what we learned.\n");
        facilitator.client.edit_synthesis(week, current.chars().count(), 0, &opening)?;
        tally.synthesis_edits += 1;
        sync(facilitator, tally)?;
    }
    Ok(())
}
