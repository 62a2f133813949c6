//! Who the simulated people are: names, time zones and personas, and how likely each persona is
//! to practise, go offline, share, review and make a concrete suggestion.

use chrono::NaiveTime;
use rand::Rng;
use rand::rngs::StdRng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persona {
    /// Practises almost daily in the morning and does every review.
    Steady,
    /// Practises most days, reviews everything assigned and more, always with a suggestion.
    GenerousReviewer,
    /// Practises but lets assigned reviews slide: reviews overdue.
    SkipsReviews,
    /// Every other day or so, often without a network.
    Occasional,
    /// Strong start, then barely practises in the last week and a half.
    Slipping,
    /// Stops practising altogether past the middle of the run.
    DroppingOut,
    /// Practises around midnight with a 3 h day-start offset, and flies to another zone halfway.
    LateNightTraveller,
    /// A control-arm learner, practising alone: keen at first, fading over the run. The fade is
    /// this simulation's assumption, not a finding; real programs measure it.
    Solo,
}

/// A simulated cohort member as the demo invites them.
pub struct PersonSpec {
    pub name: &'static str,
    pub time_zone: &'static str,
    pub persona: Persona,
}

pub const COHORT_TIME_ZONE: &str = "Europe/Berlin";
/// Where the traveller flies halfway through.
pub const TRAVELLER_DESTINATION: &str = "Europe/Lisbon";

/// In join order, which is roster order: rotation roles follow it (position mod 3), so the one who
/// lets reviews slide is a reviewer in week 5.
pub const LEARNERS: [PersonSpec; 12] = [
    PersonSpec { name: "Amara Okafor", time_zone: "Europe/Berlin", persona: Persona::Steady },
    PersonSpec { name: "Ben Hughes", time_zone: "Europe/London", persona: Persona::Steady },
    PersonSpec { name: "Chen Wei", time_zone: "Asia/Singapore", persona: Persona::GenerousReviewer },
    PersonSpec { name: "Dara Murphy", time_zone: "Europe/Dublin", persona: Persona::Steady },
    PersonSpec { name: "Elif Demir", time_zone: "Europe/Istanbul", persona: Persona::Slipping },
    PersonSpec { name: "Farid Haddad", time_zone: "Europe/Berlin", persona: Persona::DroppingOut },
    PersonSpec { name: "Grace Kim", time_zone: "America/New_York", persona: Persona::LateNightTraveller },
    PersonSpec { name: "Hugo Martin", time_zone: "Europe/Paris", persona: Persona::Occasional },
    PersonSpec { name: "Inés García", time_zone: "Europe/Madrid", persona: Persona::GenerousReviewer },
    PersonSpec { name: "Kavya Iyer", time_zone: "Asia/Kolkata", persona: Persona::Steady },
    PersonSpec { name: "Jonas Berg", time_zone: "Europe/Stockholm", persona: Persona::SkipsReviews },
    PersonSpec { name: "Lena Fischer", time_zone: "Europe/Berlin", persona: Persona::Occasional },
];

/// The control arm: the same program alone (no cohort), in the same zones.
pub const CONTROL_LEARNERS: [PersonSpec; 12] = [
    PersonSpec { name: "Nadia Rahman", time_zone: "Europe/Berlin", persona: Persona::Solo },
    PersonSpec { name: "Oscar Lindqvist", time_zone: "Europe/Stockholm", persona: Persona::Solo },
    PersonSpec { name: "Priya Nair", time_zone: "Asia/Kolkata", persona: Persona::Solo },
    PersonSpec { name: "Quentin Blanc", time_zone: "Europe/Paris", persona: Persona::Solo },
    PersonSpec { name: "Rosa Alvarez", time_zone: "Europe/Madrid", persona: Persona::Solo },
    PersonSpec { name: "Samir Aziz", time_zone: "Europe/Istanbul", persona: Persona::Solo },
    PersonSpec { name: "Tess O'Brien", time_zone: "Europe/Dublin", persona: Persona::Solo },
    PersonSpec { name: "Umar Bello", time_zone: "Europe/London", persona: Persona::Solo },
    PersonSpec { name: "Vera Novak", time_zone: "Europe/Berlin", persona: Persona::Solo },
    PersonSpec { name: "Wen Li", time_zone: "Asia/Singapore", persona: Persona::Solo },
    PersonSpec { name: "Ximena Ruiz", time_zone: "America/New_York", persona: Persona::Solo },
    PersonSpec { name: "Yusuf Kaya", time_zone: "Europe/Rome", persona: Persona::Solo },
];

pub const FACILITATOR: PersonSpec =
    PersonSpec { name: "Maya Rossi", time_zone: "Europe/Rome", persona: Persona::Steady };

impl Persona {
    /// Chance of practising on program day `day` of a `days`-day run.
    pub fn practice_chance(self, day: u32, days: u32) -> f64 {
        match self {
            Self::Steady => 0.92,
            Self::GenerousReviewer => 0.85,
            Self::SkipsReviews => 0.8,
            Self::Occasional => 0.5,
            Self::LateNightTraveller => 0.75,
            // The last 8 days are thin, so the last 7 hold fewer than half of the 7 before.
            Self::Slipping if day + 8 > days => 0.25,
            Self::Slipping => 0.9,
            Self::DroppingOut if day > dropout_day(days) => 0.0,
            Self::DroppingOut => 0.75,
            Self::Solo => 0.85 - 0.5 * f64::from(day) / f64::from(days.max(1)),
        }
    }

    pub fn offline_chance(self) -> f64 {
        match self {
            Self::Occasional => 0.5,
            Self::LateNightTraveller => 0.3,
            Self::Steady | Self::GenerousReviewer => 0.08,
            _ => 0.15,
        }
    }

    /// Chance of sharing a practice in a critique week (once a week at most).
    pub fn share_chance(self) -> f64 {
        match self {
            Self::GenerousReviewer | Self::Steady => 0.85,
            Self::SkipsReviews => 0.7,
            _ => 0.5,
        }
    }

    /// Chance, on a day they are around, of writing an assigned review they owe.
    pub fn review_chance(self) -> f64 {
        match self {
            Self::GenerousReviewer => 1.0,
            Self::Steady => 0.8,
            Self::LateNightTraveller | Self::Occasional => 0.55,
            Self::Slipping => 0.45,
            Self::SkipsReviews => 0.04,
            Self::DroppingOut => 0.3,
            Self::Solo => 0.0,
        }
    }

    /// Chance of opening the app to review and rate on a day without practice; someone who
    /// dropped out does not.
    pub fn visit_chance(self, day: u32, days: u32) -> f64 {
        if self == Self::DroppingOut && day > dropout_day(days) { 0.0 } else { 0.3 }
    }

    pub fn suggestion_chance(self) -> f64 {
        match self {
            Self::GenerousReviewer => 0.95,
            Self::Steady => 0.6,
            _ => 0.3,
        }
    }

    /// Local wall-clock time of the day's session, and whether it falls after midnight (counted
    /// for the day before thanks to the day-start offset).
    pub fn session_time(self, rng: &mut StdRng) -> (NaiveTime, bool) {
        let at = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default();
        match self {
            Self::LateNightTraveller if rng.random_bool(0.5) => (at(0, rng.random_range(10..=50)), true),
            Self::LateNightTraveller => (at(23, rng.random_range(15..=55)), false),
            Self::Occasional => (at(rng.random_range(17..=21), rng.random_range(0..=59)), false),
            _ => (at(rng.random_range(6..=8), rng.random_range(0..=59)), false),
        }
    }
}

/// The last day a dropping-out member practises: past the middle, and at least a week before the
/// end so the dashboard sees a silent week.
fn dropout_day(days: u32) -> u32 {
    (days * 6 / 10).min(days.saturating_sub(8)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_who_drops_out_is_silent_for_the_last_week_of_any_run_long_enough_to_show_it() {
        for days in 9..=90 {
            let last = dropout_day(days);
            assert!(last + 7 < days, "{days} days: last practice on day {last}");
            assert!(last >= days / 2 || last + 8 == days, "{days} days: drops out too early, on day {last}");
            assert_eq!(Persona::DroppingOut.practice_chance(last + 1, days), 0.0);
            assert_eq!(Persona::DroppingOut.visit_chance(last + 1, days), 0.0);
        }
    }

    #[test]
    fn the_slipping_learner_practises_far_less_in_the_last_week_than_before() {
        let days = 63;
        let before = Persona::Slipping.practice_chance(days - 14, days);
        let last_week = Persona::Slipping.practice_chance(days - 3, days);
        // Expected active days in the last 7 are well under half of the 7 before: "slipping".
        assert!(last_week * 2.0 < before * 0.6, "{last_week} against {before}");
    }

    #[test]
    fn every_time_zone_is_a_real_iana_zone() {
        for person in LEARNERS.iter().chain(&CONTROL_LEARNERS).chain([&FACILITATOR]) {
            assert!(person.time_zone.parse::<chrono_tz::Tz>().is_ok(), "{}", person.time_zone);
        }
        assert!(COHORT_TIME_ZONE.parse::<chrono_tz::Tz>().is_ok());
        assert!(TRAVELLER_DESTINATION.parse::<chrono_tz::Tz>().is_ok());
    }
}
