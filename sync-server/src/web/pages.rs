//! The dashboard's HTML: server-rendered (maud escapes every value), mobile-first, no script.

use maud::{DOCTYPE, Markup, PreEscaped, html};
use microcohort_core::domain::arms::ArmComparison;
use microcohort_core::domain::cohort_metrics::{CohortReport, MemberReport};
use microcohort_core::domain::prompt_analytics::PromptRow;
use microcohort_core::domain::roster::MemberRole;
use microcohort_core::domain::statistics::Estimate;

use super::charts;
use crate::report::{CalibrationReport, ProgramReport, StoryRow};
use microcohort_core::domain::calibration::Agreement;

const STYLE: &str = "
body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#f8fafc;color:#0f172a}
header{background:#0f172a;color:#fff;padding:12px 16px}header h1{font-size:18px;margin:0}
main{padding:12px;max-width:960px;margin:auto}section{background:#fff;border-radius:10px;padding:12px;margin:0 0 12px;box-shadow:0 1px 2px #0002}
h2{font-size:16px;margin:0 0 8px}.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:8px}
.figure{background:#f1f5f9;border-radius:8px;padding:8px}.figure b{display:block;font-size:20px}
.chart{width:100%;height:auto}table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px;border-bottom:1px solid #e2e8f0}
.risk{color:#b91c1c}.muted{color:#64748b}.legend span{display:inline-block;margin-right:10px}
input,button{font:inherit;padding:8px;width:100%;box-sizing:border-box;margin:4px 0}.problem{color:#b91c1c}
.scroll{overflow-x:auto}
form.inline{display:inline}button.link{background:none;border:0;color:#93c5fd;padding:0;width:auto;margin:0;cursor:pointer;text-decoration:underline}
";

fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Microcohort" }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "—".into(), |v| format!("{:.0} %", v * 100.0))
}

fn decimal(value: Option<f64>) -> String {
    value.map_or_else(|| "—".into(), |v| format!("{v:.1}"))
}

/// A sign-in page around `content`.
fn sign_in_page(content: maud::Markup) -> String {
    page("Sign in", html! { header { h1 { "Microcohort dashboard" } } main { section { h2 { "Sign in" } (content) } } })
}

pub fn sign_in(problem: Option<&str>) -> String {
    sign_in_page(html! {
        p { "Facilitators: open the dashboard from the Microcohort app, which signs this browser in for you. Program leads: open the sign-in link your operator printed with " code { "admin dashboard-link" } "." }
        @if let Some(problem) = problem { p.problem role="alert" { (problem) } }
    })
}

/// What a one-time sign-in link opens: a button that redeems it. A GET never spends the link, so
/// a mail scanner or a link preview that fetches it leaves it working for the person.
pub fn confirm_sign_in(code: &str) -> String {
    sign_in_page(html! {
        p { "This one-time link signs this browser in to the dashboard." }
        form method="post" action={ "/dashboard/link/" (code) } {
            button type="submit" { "Open the dashboard" }
        }
    })
}

pub fn problem(message: &str) -> String {
    page(
        "Problem",
        html! { header { h1 { "Microcohort dashboard" } } main { section { p.problem { (message) } a href="/dashboard" { "Back" } } } },
    )
}

pub fn dashboard(report: &ProgramReport) -> String {
    let total_days = report.cohorts.iter().map(|c| c.total_days).max().unwrap_or(90);
    page(
        &report.title,
        html! {
            header { h1 { (report.title) } span.muted { "updated " (report.generated_at.format("%Y-%m-%d %H:%M UTC")) } " · " form.inline method="post" action="/dashboard/sign-out" { button.link type="submit" { "sign out" } } }
            main {
                section id="program" {
                    h2 { "Program" }
                    div.figures {
                        div.figure { b { (report.cohorts.len()) } "cohorts" }
                        div.figure { b { (report.facilitator_load.learners) } "learners" }
                        div.figure { b { (decimal(report.facilitator_load.learners_per_facilitator)) } "learners per facilitator" }
                    }
                    @if let Some(baseline) = &report.baseline {
                        p { "60-day activity against baseline " b { (baseline.title) } " (" (decimal(baseline.mean_active_days_60)) " active days):" }
                        ul { @for (cohort, uplift) in &baseline.uplift { li { (cohort) ": " (uplift.map_or_else(|| "—".into(), |u| format!("{:+.0} %", u * 100.0))) } } }
                    }
                    @if let Some(imported) = &report.imported_baseline {
                        h2 { "Against the imported baseline" }
                        p {
                            (imported.learners) " learners of an earlier program; "
                            (imported.mean_active_days_60.map_or_else(|| "—".into(), |m| format!("{:.1} active days in days 1–60 (95 % interval {:.1}–{:.1})", m.value, m.low, m.high)))
                        }
                        ul {
                            @for u in &imported.uplift {
                                li { (u.cohort_id) ": " (u.uplift.map_or_else(|| "—".into(), |e| format!("{:+.0} % (95 % interval {:+.0} to {:+.0} %), days 1–{}", e.value * 100.0, e.low * 100.0, e.high * 100.0, u.days))) }
                            }
                        }
                        p.conclusion { (imported.conclusion) }
                    }
                    @if let Some(arms) = &report.arms { (arms_section(&report.program_id, arms)) }
                    h2 { "Retention" }
                    (charts::retention(&report.cohorts, total_days))
                    p.legend { @for (i, c) in report.cohorts.iter().enumerate() { span style=(format!("color:{}", charts::colour(i))) { "■ " (c.title) } } }
                    h2 { "Feedback quality" }
                    (charts::feedback_quality(&report.cohorts))
                    (prompts_section(&report.program_id, &report.prompts))
                    (stories_section(&report.stories))
                    (calibration_section(&report.calibration))
                    h2 { "Facilitator load" }
                    table { tr { th { "Facilitator" } th { "Cohorts" } th { "Learners" } }
                        @for f in &report.facilitator_load.facilitators { tr { td { (f.display_name) } td { (f.cohorts) } td { (f.learners) } } } }
                    p.muted { "Export: " a href=(format!("/v1/programs/{}/report.csv", report.program_id)) { "members CSV" } " · " a href=(format!("/v1/programs/{}/report.csv?rows=cohorts", report.program_id)) { "cohorts CSV" } }
                }
                @for cohort in &report.cohorts { (cohort_section(cohort)) }
            }
        },
    )
}

/// The cohort arm against the control arm: each arm's figures with intervals, the uplift, and
/// what that allows one to say.
fn arms_section(program_id: &str, arms: &ArmComparison) -> Markup {
    let interval = |e: Option<Estimate>, scale: f64, unit: &str| {
        e.map_or_else(
            || "—".to_owned(),
            |e| format!("{:.1}{unit} ({:.1}–{:.1})", e.value * scale, e.low * scale, e.high * scale),
        )
    };
    let days: Vec<u32> = arms.arms.first().map(|a| a.engagement.iter().map(|(d, _)| *d).collect()).unwrap_or_default();
    html! {
        h2 { "Cohort arm against the control arm" }
        table id="arms" {
            tr { th { "Arm" } th { "Learners" } @for d in &days { th { "Engaged at day " (d) } } th { "Active days, days 1–" (arms.program_day.min(60)) } }
            @for a in &arms.arms {
                tr data-arm=(a.arm.as_str()) {
                    td { (a.arm.as_str()) } td { (a.learners) }
                    @for (_, share) in &a.engagement { td { (interval(*share, 100.0, " %")) } }
                    td { (interval(a.mean_active_days_60, 1.0, "")) }
                }
            }
        }
        ul {
            @for u in &arms.uplift {
                li { (u.cohort_id) " against the control arm: " (u.uplift.map_or_else(|| "—".into(), |e| format!("{:+.0} % (95 % interval {:+.0} to {:+.0} %), days 1–{}", e.value * 100.0, e.low * 100.0, e.high * 100.0, u.days))) }
            }
        }
        p.conclusion { (arms.conclusion) }
        p.muted { "Intervals are 95 %: Wilson for shares, a seeded bootstrap for means and the uplift. " a href=(format!("/v1/programs/{program_id}/report.csv?rows=arms")) { "arms CSV" } }
    }
}

/// Prompt analytics for the curriculum team: the prompts learners abandon most, or that take
/// longest against what they state, first.
fn prompts_section(program_id: &str, prompts: &[PromptRow]) -> Markup {
    let minutes = |m: Option<f64>| m.map_or_else(|| "–".into(), |m| format!("{m:.1}"));
    html! {
        h2 { "Prompts" }
        @if prompts.is_empty() {
            p.muted { "No practice logged yet." }
        } @else {
            div.scroll { table id="prompts" {
                tr { th { "Prompt" } th { "Version" } th { "Started" } th { "Abandoned" } th { "Median min (stated)" } th { "Transfer" } th { "Shared" } th { "Feedback helpfulness" } }
                @for p in prompts {
                    tr data-prompt=(p.prompt_id) {
                        td { (p.title) br; small.muted { (p.prompt_id) } }
                        td { (p.pack_version) }
                        td { (p.started) }
                        td { (p.abandoned) " (" (percent(p.abandoned_share)) ")" }
                        td { (minutes(p.median_minutes)) " (" (p.stated_minutes.map_or_else(|| "–".into(), |m| m.to_string())) ")" }
                        td { (percent(p.transfer_share)) }
                        td { (p.shared) }
                        td { (decimal(p.mean_helpfulness)) " (" (p.feedback) ")" }
                    }
                }
            } }
            p.muted { a href=(format!("/v1/programs/{program_id}/report.csv?rows=prompts")) { "prompts CSV" } }
        }
    }
}

/// Each cohort's and learner's agreement with the exemplars' reference ratings: who needs help
/// giving feedback.
fn calibration_section(calibration: &CalibrationReport) -> Markup {
    let off = |a: &Agreement| a.mean_abs_difference.map_or_else(|| "–".into(), |d| format!("{d:.2}"));
    html! {
        h2 { "Calibration (week 0)" }
        @if calibration.members.is_empty() {
            p.muted { "No learner has rated the exemplars yet." }
        } @else {
            p.muted { "Mean difference from the reference ratings per criterion (0 is perfect), and the share within one point." }
            table id="calibration" {
                tr { th { "Learner" } th { "Cohort" } th { "Ratings" } th { "Mean difference" } th { "Within one point" } }
                @for c in &calibration.cohorts {
                    tr.cohort { td { b { "Whole cohort" } } td { (c.cohort_id) } td { (c.agreement.rated) } td { (off(&c.agreement)) } td { (percent(c.agreement.within_one)) } }
                }
                @for m in &calibration.members {
                    tr data-user=(m.user_id) { td { (m.display_name) } td { (m.cohort_id) } td { (m.agreement.rated) } td { (off(&m.agreement)) } td { (percent(m.agreement.within_one)) } }
                }
            }
        }
    }
}

/// Transfer stories learners shared with the program team, newest first, with their prompt.
fn stories_section(stories: &[StoryRow]) -> Markup {
    html! {
        h2 { "Transfer stories" }
        @if stories.is_empty() {
            p.muted { "No learner has shared a transfer story yet." }
        } @else {
            ul id="stories" {
                @for s in stories {
                    li.story {
                        b { (s.display_name) } span.muted { " · " (s.local_date) " · " (s.prompt_title) " · " (s.kind.replace('_', " ")) }
                        br; (s.note)
                        @if let Some(link) = &s.link { " " a href=(link) rel="noopener noreferrer" { "link" } }
                    }
                }
            }
        }
    }
}

fn cohort_section(cohort: &CohortReport) -> Markup {
    let learners: Vec<&MemberReport> = cohort.members.iter().filter(|m| m.role == MemberRole::Learner).collect();
    let at_risk = learners.iter().filter(|m| !m.at_risk.is_empty()).count();
    html! {
        section.cohort data-cohort=(cohort.cohort_id) {
            h2 { (cohort.title) }
            p.muted { "Program day " (cohort.program_day) @if let Some(week) = cohort.week { " · week " (week) } " · " (cohort.learners) " learners" }
            div.figures {
                @for e in &cohort.engagement { div.figure { b { (percent(e.share)) } "engaged at day " (e.day) } }
                div.figure { b { (decimal(cohort.activity_60.map(|a| a.mean_active_days))) } "active days, days 1–60" @if cohort.activity_60.is_some_and(|a| !a.complete) { " so far" } }
                div.figure { b { (cohort.feedback.given) } "feedback given" }
                div.figure { b { (decimal(cohort.feedback.mean_helpfulness)) } "mean helpfulness (1–5)" }
                div.figure { b { (percent(cohort.attendance_share)) } "at the critiques" }
                div.figure { b { (percent(cohort.capstone_share)) } "shared their capstone" }
                div.figure.risk { b { (at_risk) } "at risk" }
            }
            h2 { "Active days" }
            (charts::heatmap(&learners, cohort.program_day, cohort.total_days))
            div.scroll { table {
                tr { th { "Member" } th { "Streak" } th { "Active 7/14/30" } th { "Feedback given/received" } th { "Reviews owed" } th { "Critiques attended" } th { "Capstone · reflection" } }
                @for m in &learners {
                    tr.member data-user=(m.user_id) {
                        td {
                            (m.display_name) @if m.left { span.muted { " (left)" } }
                            @if !m.at_risk.is_empty() {
                                br; small.risk { @for (i, r) in m.at_risk.iter().enumerate() { @if i > 0 { "; " } (r.describe()) } }
                            }
                        }
                        td { (m.streak) }
                        td { (m.active_days_7) "/" (m.active_days_14) "/" (m.active_days_30) }
                        td { (m.feedback_given) "/" (m.feedback_received) }
                        td { (m.reviews_owed) @if m.reviews_overdue > 0 { span.risk { " (" (m.reviews_overdue) " overdue)" } } }
                        td { (m.critiques_attended) "/" (m.critiques_recorded) }
                        td { (if m.capstone_shared { "shared" } else { "–" }) " · " (if m.reflection_shared { "shared" } else { "–" }) }
                    }
                }
            } }
        }
    }
}
