//! What the demo prints: one line per simulated day, then the facilitator dashboard's figures.
//! Every figure comes from the simulated data; the closing summary is the facilitator device's
//! own dashboard, computed offline after a last sync.

use std::net::SocketAddr;

use microcohort_core::domain::arms::ArmComparison;
use microcohort_core::domain::cohort_metrics::CohortReport;
use microcohort_core::domain::roster::MemberRole;

use super::simulation::{Program, Tally};

pub fn print_day(program: &Program, day: u32, tally: &Tally) {
    let date = program.blueprint.date_of_day(day);
    let week = program.blueprint.position_on(date).week.map_or_else(String::new, |w| format!("week {w}"));
    let offline = if tally.offline.is_empty() { "none".to_owned() } else { tally.offline.join(", ") };
    println!(
        "day {day:>2}/{} {} {week:<7} practices {:>2}  shared {:>2}  feedback {:>2}  ratings {:>2}  syncs {:>2}  offline: {offline}",
        program.days,
        date.format("%a %Y-%m-%d"),
        tally.practices,
        tally.shares,
        tally.feedback,
        tally.ratings,
        tally.syncs,
    );
}

fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "–".into(), |s| format!("{:.0}%", s * 100.0))
}

/// The cohort arm against the control arm, as the program report states it.
pub fn print_arms(arms: Option<&ArmComparison>) {
    let Some(arms) = arms else { return };
    println!("arms (the program report, days 1–{}):", arms.program_day.min(60));
    for arm in &arms.arms {
        let days = arm.mean_active_days_60.map_or_else(
            || "–".into(),
            |e| format!("{:.1} active days (95 % interval {:.1}–{:.1})", e.value, e.low, e.high),
        );
        let engaged: Vec<String> =
            arm.engagement.iter().map(|(day, e)| format!("day {day} {}", percent(e.map(|e| e.value)))).collect();
        println!("  {} arm, {} learners: {days}; engaged {}", arm.arm.as_str(), arm.learners, engaged.join(", "));
    }
    if let Some(e) = arms.uplift.first().and_then(|u| u.uplift) {
        println!(
            "  uplift over the control arm: {:+.0} % (95 % interval {:+.0} to {:+.0} %)",
            e.value * 100.0,
            e.low * 100.0,
            e.high * 100.0
        );
    }
    println!("  {}", arms.conclusion);
    println!("  (the control learners' fading practice is this simulation's assumption, not a finding)");
}

pub fn print_summary(report: &CohortReport, totals: &Tally, seconds: f64, peer_led: Option<(u32, &str)>) {
    println!();
    println!(
        "simulated in {seconds:.1} s: {} practices ({} with transfer evidence), {} shared, {} feedback, {} ratings, {} replies, {} synthesis edits, {} syncs; control arm: {} practices",
        totals.practices,
        totals.transfer,
        totals.shares,
        totals.feedback,
        totals.ratings,
        totals.replies,
        totals.synthesis_edits,
        totals.syncs,
        totals.control_practices,
    );
    let led = peer_led.map_or_else(String::new, |(week, lead)| {
        format!("; week {week}'s critique led by {lead} ({} agenda items)", totals.agenda_items)
    });
    println!("facilitator tools: {} private notes to members at risk{led}", totals.nudges);
    let week = report.week.map_or_else(String::new, |w| format!(", week {w}"));
    println!(
        "facilitator dashboard: {} on program day {}{week}, {} learners",
        report.title, report.program_day, report.learners
    );
    let engagement: Vec<String> = report
        .engagement
        .iter()
        .filter(|e| e.share.is_some())
        .map(|e| format!("day {} {}", e.day, percent(e.share)))
        .collect();
    if !engagement.is_empty() {
        println!("  engagement: {}", engagement.join(", "));
    }
    if let Some(activity) = report.activity_60 {
        println!("  active days per learner so far (days 1–60): {:.1}", activity.mean_active_days);
    }
    let f = &report.feedback;
    println!(
        "  feedback: {} given, {} per learner per week, helpfulness {}, {} with a suggestion, {} of rubric criteria addressed",
        f.given,
        f.per_member_per_week.map_or_else(|| "–".into(), |v| format!("{v:.1}")),
        f.mean_helpfulness.map_or_else(|| "–".into(), |v| format!("{v:.1}/5")),
        percent(f.suggestion_share),
        percent(f.criteria_share),
    );
    println!(
        "  critiques: {} of attendance records present; capstone shared by {} of learners",
        percent(report.attendance_share),
        percent(report.capstone_share),
    );
    println!("  learner              active days 7/14/30  streak  feedback given/received  at risk");
    for member in report.members.iter().filter(|m| m.role == MemberRole::Learner) {
        let name = &member.display_name;
        let active = format!("{}/{}/{}", member.active_days_7, member.active_days_14, member.active_days_30);
        let feedback = format!("{}/{}", member.feedback_given, member.feedback_received);
        let risk: Vec<String> = member.at_risk.iter().map(|r| r.describe()).collect();
        let risk = if risk.is_empty() { "–".to_owned() } else { risk.join("; ") };
        println!("  {name:<20} {active:<19}  {:<6}  {feedback:<23}  {risk}", member.streak);
    }
    let at_risk = report.members.iter().filter(|m| !m.at_risk.is_empty()).count();
    println!("  at risk: {at_risk} of {} learners", report.learners);
}

/// Invites for joining the running demo from an app (an Android emulator reaches the host's
/// loopback as 10.0.2.2).
pub fn print_invites(address: SocketAddr, invites: &super::enrolment::SpareInvites) {
    println!();
    println!("join from an app: server http://{address}");
    for code in &invites.learners {
        println!("  learner invite (open cohort): {code}");
    }
    println!("  facilitator invite (the simulated cohort): {}", invites.facilitator);
}

pub fn print_links(address: SocketAddr, program_id: &str, sign_in_code: &str) {
    println!();
    println!("dashboard (served until Ctrl-C): http://{address}/dashboard/programs/{program_id}");
    // The last line: tests and scripts read it to sign in.
    println!("sign in (one-time link): http://{address}/dashboard/link/{sign_in_code}");
}
