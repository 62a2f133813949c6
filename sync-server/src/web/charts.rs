//! SVG charts drawn on the server: small, readable on a phone, no script.

use maud::{Markup, html};
use microcohort_core::domain::cohort_metrics::{CohortReport, MemberReport};

const PALETTE: [&str; 6] = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2"];

pub fn colour(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

/// Engagement by program day, one line per cohort (day 1 at the left, 100 % at the top).
pub fn retention(cohorts: &[CohortReport], total_days: u32) -> Markup {
    let (width, height) = (300.0, 120.0);
    let x = |day: usize| 20.0 + (day as f64 - 1.0) / f64::from(total_days.max(2) - 1) * (width - 25.0);
    let y = |share: f64| 5.0 + (1.0 - share) * (height - 20.0);
    html! {
        svg.chart role="img" aria-label="Retention curve: engagement by program day" viewBox=(format!("0 0 {width} {height}")) {
            @for share in [0.0, 0.5, 1.0] {
                line x1="20" x2=(width - 5.0) y1=(y(share)) y2=(y(share)) stroke="#ddd" stroke-width="0.5" {}
                text x="0" y=(y(share) + 3.0) font-size="8" fill="#666" { (format!("{:.0}%", share * 100.0)) }
            }
            text x="20" y=(height - 2.0) font-size="8" fill="#666" { "day 1" }
            text x=(width - 40.0) y=(height - 2.0) font-size="8" fill="#666" { "day " (total_days) }
            @for (i, cohort) in cohorts.iter().enumerate() {
                @let points: Vec<String> = cohort.retention.iter().enumerate().map(|(d, s)| format!("{:.1},{:.1}", x(d + 1), y(*s))).collect();
                polyline points=(points.join(" ")) fill="none" stroke=(colour(i)) stroke-width="1.5" {
                    title { (cohort.title) }
                }
            }
        }
    }
}

/// One row per member, one cell per program day: filled where they practised.
pub fn heatmap(members: &[&MemberReport], program_day: u32, total_days: u32) -> Markup {
    let cell = 4.0;
    let label = 70.0;
    let width = label + f64::from(total_days) * cell;
    let height = members.len() as f64 * (cell + 1.0) * 2.0 + 4.0;
    html! {
        svg.chart.heatmap role="img" aria-label="Active days per member" viewBox=(format!("0 0 {width} {height}")) {
            @for (row, member) in members.iter().enumerate() {
                @let top = row as f64 * (cell + 1.0) * 2.0;
                text x="0" y=(top + 7.0) font-size="8" fill="#333" { (member.display_name) }
                @for day in 1..=total_days {
                    @let active = member.active_program_days.binary_search(&day).is_ok();
                    @let fill = if active { "#059669" } else if day <= program_day { "#e5e7eb" } else { "#f9fafb" };
                    rect x=(label + f64::from(day - 1) * cell) y=(top) width=(cell - 0.5) height=(cell * 2.0) fill=(fill) {}
                }
            }
        }
    }
}

/// Feedback quality per cohort as bars: helpfulness (of 5), suggestion share, criteria share.
pub fn feedback_quality(cohorts: &[CohortReport]) -> Markup {
    let rows: Vec<(String, &str, Option<f64>)> = cohorts
        .iter()
        .flat_map(|c| {
            [
                (format!("{} · helpfulness", c.title), "#2563eb", c.feedback.mean_helpfulness.map(|h| h / 5.0)),
                (format!("{} · suggestions", c.title), "#d97706", c.feedback.suggestion_share),
                (format!("{} · rubric", c.title), "#059669", c.feedback.criteria_share),
            ]
        })
        .collect();
    let height = rows.len() as f64 * 12.0 + 4.0;
    html! {
        svg.chart role="img" aria-label="Feedback quality" viewBox=(format!("0 0 300 {height}")) {
            @for (i, (name, fill, value)) in rows.iter().enumerate() {
                @let top = i as f64 * 12.0;
                text x="0" y=(top + 8.0) font-size="7" fill="#333" { (name) }
                rect x="150" y=(top + 1.0) width="140" height="8" fill="#f3f4f6" {}
                @if let Some(v) = value {
                    rect x="150" y=(top + 1.0) width=(140.0 * v.clamp(0.0, 1.0)) height="8" fill=(fill) {}
                }
            }
        }
    }
}
