//! Shared fixtures: a learner's device with a movable clock, enrolled in the default program.

#![allow(dead_code)]

pub mod cohort;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use microcohort_core::domain::blueprint::Blueprint;
use microcohort_core::{Client, Enrollment, ManualClock};

pub const PROGRAM_START: (i32, u32, u32) = (2026, 3, 2);

pub fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("test instant")
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("test date")
}

pub fn blueprint(zone: chrono_tz::Tz) -> Blueprint {
    let (y, m, d) = PROGRAM_START;
    Blueprint::default_90_days(date(y, m, d), zone)
}

pub fn enrollment(learner_zone: &str) -> Enrollment {
    Enrollment {
        program_id: "leaders-spring-2026".into(),
        program_title: "Everyday Leadership, spring cohort".into(),
        pack_id: "everyday-leadership".into(),
        blueprint: blueprint(chrono_tz::Europe::Berlin),
        learner_time_zone: learner_zone.into(),
    }
}

/// A client on an in-memory database, enrolled in the default program, clock at `now`.
pub fn learner(now: &str) -> (Client, ManualClock) {
    let clock = ManualClock::new(at(now));
    let client = Client::open_in_memory(Arc::new(clock.clone())).expect("open");
    client.import_default_prompt_pack().expect("default pack");
    client.enroll(enrollment("Europe/Berlin")).expect("enroll");
    (client, clock)
}
