use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::*;
use crate::domain::roster::Member;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn start() -> NaiveDate {
    date(2026, 3, 2)
}

fn member(id: &str, role: MemberRole, zone: &str, joined: NaiveDate, left: Option<NaiveDate>) -> Member {
    Member {
        user_id: id.into(),
        display_name: id.to_uppercase(),
        role,
        time_zone: zone.into(),
        day_start: Default::default(),
        joined_on: joined,
        left_on: left,
        paused_on: None,
    }
}

fn learner(id: &str) -> Member {
    member(id, MemberRole::Learner, "Europe/Berlin", start(), None)
}

fn days(dates: impl IntoIterator<Item = NaiveDate>) -> Vec<DayActivity> {
    dates.into_iter().map(|date| DayActivity { date, practices: 1, seconds: 600 }).collect()
}

/// Active on program days `from..=to`.
fn active(user: &str, from: u32, to: u32) -> MemberActivity {
    let blueprint = Blueprint::default_90_days(start(), Tz::Europe__Berlin);
    MemberActivity {
        user_id: user.into(),
        days: days((from..=to).map(|d| blueprint.date_of_day(d))),
        transfer_evidence: 0,
        late_arrivals: 0,
    }
}

fn facts(members: Vec<Member>, activity: Vec<MemberActivity>) -> CohortFacts {
    CohortFacts {
        cohort_id: "c1".into(),
        title: "Cohort 1".into(),
        blueprint: Blueprint::default_90_days(start(), Tz::Europe__Berlin),
        roster: Roster::new(members),
        activity,
        submissions: Vec::new(),
        feedback: Vec::new(),
        attendance: Vec::new(),
        arm: Default::default(),
    }
}

/// Noon in Berlin on program day `day`.
fn noon_of_day(day: u32) -> DateTime<Utc> {
    let date = start() + Days::new(u64::from(day - 1));
    Tz::Europe__Berlin.from_local_datetime(&date.and_hms_opt(12, 0, 0).unwrap()).unwrap().with_timezone(&Utc)
}

fn member_report<'a>(report: &'a CohortReport, id: &str) -> &'a MemberReport {
    report.members.iter().find(|m| m.user_id == id).unwrap()
}

#[test]
fn engagement_counts_members_enrolled_at_start_active_in_the_7_days_up_to_day_n() {
    // a: every day; b: days 1..=7 only; c: never; e joined during orientation (counts); d joined
    // in week 1 (not in the denominator).
    let late = member("d", MemberRole::Learner, "Europe/Berlin", start() + Days::new(10), None);
    let orientation = member("e", MemberRole::Learner, "Europe/Berlin", start() + Days::new(3), None);
    let f = facts(
        vec![learner("a"), learner("b"), learner("c"), late, orientation],
        vec![active("a", 1, 30), active("b", 1, 7), active("d", 11, 30), active("e", 4, 5)],
    );
    let report = cohort_report(&f, noon_of_day(25));
    assert_eq!(report.program_day, 25);
    assert_eq!(report.enrolled_at_start, 4);
    let at = |day| report.engagement.iter().find(|e| e.day == day).unwrap().share;
    assert_eq!(at(7), Some(3.0 / 4.0));
    assert_eq!(at(21), Some(1.0 / 4.0));
    assert_eq!(at(60), None, "day 60 not reached yet");
    assert_eq!(report.retention.len(), 25);
    assert_eq!(report.retention[0], 2.0 / 4.0);
    // Day 14 looks at days 8..=14: b's last day (7) is outside.
    assert_eq!(report.retention[13], 1.0 / 4.0);
    let activity = report.activity_60.unwrap();
    assert!(!activity.complete);
    assert_eq!(activity.mean_active_days, (25.0 + 7.0 + 2.0) / 4.0);
}

#[test]
fn at_risk_names_the_reason() {
    let f = facts(
        vec![learner("idle"), learner("slipping"), learner("steady")],
        vec![
            active("idle", 1, 10),
            // 7 active days in days 11..=17, then 2 in days 18..=24.
            MemberActivity {
                user_id: "slipping".into(),
                days: days((11..=17).chain([20, 23]).map(|d| start() + Days::new(d - 1))),
                transfer_evidence: 0,
                late_arrivals: 0,
            },
            active("steady", 1, 24),
        ],
    );
    let report = cohort_report(&f, noon_of_day(24));
    assert_eq!(member_report(&report, "idle").at_risk, vec![RiskReason::NoActiveDayIn7Days]);
    assert_eq!(member_report(&report, "slipping").at_risk, vec![RiskReason::Slipping { last_7: 2, previous_7: 7 }]);
    assert!(member_report(&report, "steady").at_risk.is_empty());
    assert_eq!(member_report(&report, "steady").streak, 24);
}

#[test]
fn nobody_is_at_risk_in_their_first_week() {
    let late = member("late", MemberRole::Learner, "Europe/Berlin", start() + Days::new(20), None);
    let f = facts(vec![learner("a"), late], vec![]);
    assert!(cohort_report(&f, noon_of_day(3)).members.iter().all(|m| m.at_risk.is_empty()));
    // Day 25: "a" has been idle for 7 days; "late" joined on day 21 and is not flagged yet.
    let report = cohort_report(&f, noon_of_day(25));
    assert_eq!(member_report(&report, "a").at_risk, vec![RiskReason::NoActiveDayIn7Days]);
    assert!(member_report(&report, "late").at_risk.is_empty());
}

#[test]
fn members_who_left_stay_in_the_engagement_denominator_but_are_not_flagged() {
    let gone = member("gone", MemberRole::Learner, "Europe/Berlin", start(), Some(start() + Days::new(9)));
    let f = facts(vec![learner("a"), gone], vec![active("a", 1, 30), active("gone", 1, 9)]);
    let report = cohort_report(&f, noon_of_day(30));
    let gone = member_report(&report, "gone");
    assert!(gone.left);
    assert!(gone.at_risk.is_empty());
    assert_eq!(report.engagement.iter().find(|e| e.day == 21).unwrap().share, Some(0.5));
    assert_eq!(report.learners, 1, "only one learner takes part in the current week");
}

#[test]
fn an_empty_cohort_and_a_cohort_without_feedback_report_no_figures_rather_than_zero() {
    let empty = cohort_report(&facts(vec![], vec![]), noon_of_day(40));
    assert!(empty.members.is_empty());
    assert!(empty.engagement.iter().all(|e| e.share.is_none()));
    assert!(empty.retention.is_empty());
    assert_eq!(empty.activity_60, None);
    assert_eq!(empty.feedback.per_member_per_week, None);

    let quiet = cohort_report(&facts(vec![learner("a")], vec![active("a", 1, 5)]), noon_of_day(10));
    assert_eq!(quiet.feedback.given, 0);
    assert_eq!(quiet.feedback.per_member_per_week, Some(0.0));
    assert_eq!((quiet.feedback.mean_helpfulness, quiet.feedback.suggestion_share), (None, None));
    assert_eq!(member_report(&quiet, "a").mean_helpfulness_given, None);
}

#[test]
fn feedback_quality_is_per_giver_and_for_the_cohort() {
    let mut f = facts(vec![learner("a"), learner("b"), learner("c")], vec![]);
    let fb = |author: &str, to: &str, suggestion: bool, addressed: u32, rating: Option<u8>| FeedbackFact {
        week: 1,
        author: author.into(),
        submission_author: to.into(),
        has_suggestion: suggestion,
        criteria_addressed: addressed,
        rubric_size: 4,
        helpfulness: rating,
        ..Default::default()
    };
    f.feedback = vec![fb("a", "b", true, 4, Some(5)), fb("a", "c", false, 2, Some(3)), fb("b", "a", true, 1, None)];
    let report = cohort_report(&f, noon_of_day(12));
    let a = member_report(&report, "a");
    assert_eq!((a.feedback_given, a.feedback_received), (2, 1));
    assert_eq!(a.mean_helpfulness_given, Some(4.0));
    assert_eq!(a.suggestion_share, Some(0.5));
    assert_eq!(a.criteria_share, Some(6.0 / 8.0));
    assert_eq!(report.feedback.given, 3);
    assert_eq!(report.feedback.mean_helpfulness, Some(4.0));
    assert_eq!(report.feedback.criteria_share, Some(7.0 / 12.0));
    // Day 12 is in week 1, the second week begun (orientation is week 0): 3 / (3 learners × 2 weeks).
    assert_eq!(report.feedback.per_member_per_week, Some(0.5));
}

#[test]
fn reviews_become_overdue_when_the_feedback_window_closes() {
    let mut f = facts(vec![learner("a"), learner("b"), learner("c"), learner("d")], vec![]);
    let week = 1;
    f.submissions = ["a", "b", "c", "d"]
        .iter()
        .map(|author| SubmissionFact {
            week,
            key: format!("{author}/s"),
            author: (*author).into(),
            kind: "practice".into(),
            ..Default::default()
        })
        .collect();
    let owed_before: u32 = {
        let report = cohort_report(&f, noon_of_day(8));
        assert!(report.members.iter().all(|m| m.reviews_overdue == 0));
        report.members.iter().map(|m| m.reviews_owed).sum()
    };
    assert_eq!(owed_before, 8, "4 submissions × 2 reviewers");
    // Week 1 is days 7..=13; its critique is Thursday 12 March 17:00 and the window closes 48 h later.
    let closed = Tz::Europe__Berlin.with_ymd_and_hms(2026, 3, 14, 17, 1, 0).unwrap().with_timezone(&Utc);
    let report = cohort_report(&f, closed);
    let overdue: u32 = report.members.iter().map(|m| m.reviews_overdue).sum();
    assert_eq!(overdue, 8);
    assert!(report.members.iter().all(|m| m.at_risk.contains(&RiskReason::ReviewsOverdue { count: 2 })));
}

#[test]
fn windows_follow_the_members_own_zone_across_dst_changes() {
    // Spring forward in Berlin at 01:00 UTC on Sunday 29 March 2026 (program day 28).
    let f = facts(vec![learner("a")], vec![active("a", 22, 28)]);
    // 22:30 UTC on the 28th is 23:30 CET: still the 28th.
    let before = member_report(&cohort_report(&f, Utc.with_ymd_and_hms(2026, 3, 28, 22, 30, 0).unwrap()), "a").clone();
    assert_eq!((before.reference_date, before.streak, before.active_days_7), (date(2026, 3, 28), 6, 6));
    // 22:30 UTC on the 29th is 00:30 CEST on the 30th (it would be 23:30 on the 29th under CET):
    // today has no practice yet, so the streak runs to yesterday.
    let after = member_report(&cohort_report(&f, Utc.with_ymd_and_hms(2026, 3, 29, 22, 30, 0).unwrap()), "a").clone();
    assert_eq!((after.reference_date, after.streak, after.active_days_7), (date(2026, 3, 30), 7, 6));

    // Fall back: a New York member in a program starting 19 October; DST ends Sunday 1 November.
    let mut ny = facts(vec![member("n", MemberRole::Learner, "America/New_York", date(2026, 10, 19), None)], vec![]);
    ny.blueprint = Blueprint::default_90_days(date(2026, 10, 19), Tz::America__New_York);
    ny.activity = vec![MemberActivity {
        user_id: "n".into(),
        days: days((0..14).map(|d| date(2026, 10, 19) + Days::new(d))),
        transfer_evidence: 0,
        late_arrivals: 0,
    }];
    // 04:30 UTC on 2 November is 23:30 EST on the 1st (it would be 00:30 on the 2nd under EDT).
    let report = cohort_report(&ny, Utc.with_ymd_and_hms(2026, 11, 2, 4, 30, 0).unwrap());
    let n = member_report(&report, "n");
    assert_eq!(n.reference_date, date(2026, 11, 1));
    assert_eq!((n.streak, n.active_days_14), (14, 14));
}

#[test]
fn a_travelling_learner_counts_local_days_as_logged() {
    // Flying west, the learner practised twice on the same local date (Tokyo morning, then Los
    // Angeles evening of the same calendar day): one active day, the streak unbroken.
    let mut a = active("a", 1, 10);
    a.days.push(DayActivity { date: start() + Days::new(9), practices: 1, seconds: 700 });
    let traveller = member("a", MemberRole::Learner, "America/Los_Angeles", start(), None);
    let report = cohort_report(&facts(vec![traveller], vec![a]), noon_of_day(11));
    let a = member_report(&report, "a");
    // Noon in Berlin on day 11 is 04:00 in Los Angeles on day 11: today has no practice yet.
    assert_eq!((a.streak, a.active_days_7), (10, 6));
    assert_eq!(a.active_program_days, (1..=10).collect::<Vec<_>>());
}

#[test]
fn a_finished_cohort_keeps_its_final_figures() {
    let f = facts(vec![learner("a")], vec![active("a", 1, 90)]);
    let report = cohort_report(&f, noon_of_day(90) + chrono::Duration::days(30));
    assert_eq!(report.program_day, 90);
    assert_eq!(report.retention.len(), 90);
    assert_eq!(report.engagement.iter().map(|e| e.share).collect::<Vec<_>>(), vec![Some(1.0); 4]);
    assert_eq!(report.activity_60, Some(Activity60 { mean_active_days: 60.0, complete: true }));
    assert_eq!(member_report(&report, "a").streak, 90);
}

#[test]
fn corrected_and_abandoned_logs_do_not_count_and_transfers_are_counted() {
    let log = |id: &str, day: u32, completed: bool, transfer: bool, corrects: Option<&str>| LogFact {
        id: id.into(),
        user_id: "a".into(),
        local_date: start() + Days::new(u64::from(day)),
        completed,
        duration_secs: 600,
        transfer,
        corrects: corrects.map(Into::into),
        late_arrival: false,
        ..Default::default()
    };
    let logs = [
        log("1", 0, true, true, None),
        log("2", 0, true, false, None),
        // Log 3 was completed, then corrected to abandoned: day 1 has no practice.
        log("3", 1, true, true, None),
        log("4", 1, false, false, Some("3")),
        log("5", 2, false, false, None),
    ];
    let activity = activity_from_logs(&logs);
    assert_eq!(activity.len(), 1);
    assert_eq!(activity[0].days, vec![DayActivity { date: start(), practices: 2, seconds: 1200 }]);
    assert_eq!(activity[0].transfer_evidence, 1);
}

#[test]
fn only_its_author_voids_a_log_and_late_arrivals_count_in_nothing_but_their_own_figure() {
    let log = |id: &str, user: &str, day: u64, corrects: Option<&str>, late_arrival: bool| LogFact {
        id: id.into(),
        user_id: user.into(),
        local_date: start() + Days::new(day),
        completed: true,
        duration_secs: 600,
        transfer: false,
        corrects: corrects.map(Into::into),
        late_arrival,
        ..Default::default()
    };
    let logs = [
        log("ada-1", "ada", 0, None, false),
        // Fay "corrects" Ada's log, and a log that does not exist: neither voids anything.
        log("fay-1", "fay", 1, Some("ada-1"), false),
        log("fay-2", "fay", 2, Some("nothing"), false),
        // Ada's back-dated practice that arrived after the window, and a late "correction".
        log("ada-2", "ada", 3, None, true),
        log("ada-3", "ada", 4, Some("ada-1"), true),
    ];
    let activity = activity_from_logs(&logs);
    let ada = activity.iter().find(|a| a.user_id == "ada").unwrap();
    assert_eq!(ada.days.iter().map(|d| d.date).collect::<Vec<_>>(), vec![start()], "only her on-time log");
    assert_eq!(ada.late_arrivals, 2);
    let fay = activity.iter().find(|a| a.user_id == "fay").unwrap();
    assert_eq!(fay.days.len(), 2, "her own logs still count for her");
}

#[test]
fn criteria_addressed_ignores_unknown_and_repeated_indices() {
    assert_eq!(criteria_addressed(&[0, 2, 2, 9], 3), 2);
    assert_eq!(criteria_addressed(&[], 3), 0);
    assert_eq!(criteria_addressed(&[0], 0), 0);
}

#[test]
fn a_night_owls_practice_after_midnight_counts_for_the_day_before_with_a_day_start_offset() {
    use crate::domain::time::{DayStart, local_day};
    // Practising at 01:30 Berlin time every night of days 2..=8, with the day starting at 03:00:
    // each practice belongs to the evening before, so days 1..=7 are active, not 2..=8.
    let day_start = DayStart::from_minutes(180).unwrap();
    let dates: Vec<NaiveDate> = (2..=8)
        .map(|day| {
            let night = start() + Days::new(day - 1);
            let at = Tz::Europe__Berlin.from_local_datetime(&night.and_hms_opt(1, 30, 0).unwrap()).unwrap();
            local_day(at.with_timezone(&Utc), Tz::Europe__Berlin, day_start)
        })
        .collect();
    let owl = MemberActivity { user_id: "a".into(), days: days(dates), transfer_evidence: 0, late_arrivals: 0 };
    let report = cohort_report(&facts(vec![learner("a")], vec![owl]), noon_of_day(8));
    let a = member_report(&report, "a");
    assert_eq!(a.active_program_days, (1..=7).collect::<Vec<_>>());
    // Noon on day 8: today not practised yet, the streak runs to yesterday.
    assert_eq!((a.streak, a.active_days_7), (7, 6));
    assert_eq!(report.engagement[0].share, Some(1.0));
}

#[test]
fn a_members_windows_end_on_her_day_with_her_zone_and_day_start() {
    use crate::domain::metrics::learner_metrics;
    use crate::domain::time::{DayStart, local_day};
    let three_hours = DayStart::from_minutes(180).unwrap();
    let mut late_owl = learner("owl");
    late_owl.day_start = three_hours;
    let mut traveller = learner("moved");
    traveller.time_zone = "America/Los_Angeles".into();
    // Both practised program days 1..=20 (the traveller's last days in Los Angeles).
    let f = facts(vec![late_owl, traveller], vec![active("owl", 14, 20), active("moved", 1, 20)]);
    let berlin_0100 = Tz::Europe__Berlin.with_ymd_and_hms(2026, 3, 22, 1, 0, 0).unwrap().with_timezone(&Utc);
    let la_2000 = Tz::America__Los_Angeles.with_ymd_and_hms(2026, 3, 21, 20, 0, 0).unwrap().with_timezone(&Utc);
    // 01:00 on 22 March is still 21 March (program day 20) for someone whose day starts at 03:00...
    let owl = member_report(&cohort_report(&f, berlin_0100), "owl").clone();
    assert_eq!(owl.reference_date, date(2026, 3, 21));
    assert_eq!((owl.streak, owl.active_days_7), (7, 7));
    // ...exactly what her phone computes with the same function.
    let phone_day = local_day(berlin_0100, Tz::Europe__Berlin, three_hours);
    let phone = learner_metrics(&f.activity[0].days, phone_day);
    assert_eq!((owl.streak, owl.active_days_7), (phone.streak, phone.active_days_7));
    // 20:00 in Los Angeles is 04:00 the next day in Berlin: her own zone keeps the streak.
    let moved = member_report(&cohort_report(&f, la_2000), "moved").clone();
    assert_eq!(moved.reference_date, date(2026, 3, 21));
    assert_eq!(moved.streak, 20);
    assert!(moved.at_risk.is_empty(), "{:?}", moved.at_risk);
}

#[test]
fn critique_attendance_counts_per_member_and_for_the_cohort_learners_only() {
    let fay = member("fay", MemberRole::Facilitator, "Europe/Berlin", start(), None);
    let mut f = facts(vec![learner("ana"), learner("ben"), fay], Vec::new());
    let present = |week: u32, member: &str, present: bool| AttendanceFact { week, member: member.into(), present };
    f.attendance =
        vec![present(1, "ana", true), present(2, "ana", false), present(1, "ben", true), present(1, "fay", true)];
    let report = cohort_report(&f, noon_of_day(20));
    let ana = member_report(&report, "ana");
    assert_eq!((ana.critiques_attended, ana.critiques_recorded), (1, 2));
    let ben = member_report(&report, "ben");
    assert_eq!((ben.critiques_attended, ben.critiques_recorded), (1, 1));
    assert_eq!(report.attendance_share, Some(2.0 / 3.0), "the facilitator's own record is not a learner's");
    f.attendance.clear();
    assert_eq!(cohort_report(&f, noon_of_day(20)).attendance_share, None, "nothing recorded: no figure");
}

#[test]
fn capstone_and_reflection_completion_per_member_and_the_cohorts_capstone_share() {
    let mut f = facts(vec![learner("ana"), learner("ben")], Vec::new());
    let work = |author: &str, kind: &str| SubmissionFact {
        week: 10,
        key: format!("{author}/{kind}"),
        author: author.into(),
        kind: kind.into(),
        ..Default::default()
    };
    f.submissions = vec![work("ana", "capstone"), work("ana", "reflection"), work("ben", "practice")];
    let report = cohort_report(&f, noon_of_day(80));
    let ana = member_report(&report, "ana");
    assert!(ana.capstone_shared && ana.reflection_shared);
    let ben = member_report(&report, "ben");
    assert!(!ben.capstone_shared && !ben.reflection_shared);
    assert_eq!(report.capstone_share, Some(0.5));
}
