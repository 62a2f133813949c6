//! Seeds the demo's program, its cohort and its control arm, links one real device per person
//! over HTTP, and dates everyone's membership from the program's first day.

use std::path::Path;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveTime};
use microcohort_core::domain::time::resolve_wall_clock;
use microcohort_core::{Client, ManualClock};

use super::DemoError;
use super::personas::{CONTROL_LEARNERS, FACILITATOR, LEARNERS, PersonSpec, Persona};
use super::simulation::Member;
use crate::admin::{NewProgram, create_program};
use crate::storage::Storage;
use crate::storage::enrolment::Placement;
use crate::storage::people::INVITE_DAYS;
use microcohort_core::domain::arms::Arm;

pub const PROGRAM_ID: &str = "demo-leadership";
pub const PROGRAM_TITLE: &str = "Everyday Leadership";
pub const COHORT_ID: &str = "demo-cohort";
/// The control arm: the same program practised alone.
pub const CONTROL_ID: &str = "demo-control";
/// The traveller's practices around midnight count for the evening before.
const TRAVELLER_DAY_START_MINUTES: i64 = 180;

/// Invite codes of everyone the demo simulates.
pub struct Codes {
    /// One per cohort learner, then the facilitator's.
    pub cohort: Vec<String>,
    /// One per control learner.
    pub control: Vec<String>,
}

/// Creates the program (built-in prompt pack, day 1 on `start` in `zone`), its cohort and its
/// control arm, and the invites of everyone the demo simulates.
pub fn seed(storage: &dyn Storage, start: NaiveDate, zone: &str) -> Result<Codes, DemoError> {
    let program = NewProgram {
        id: PROGRAM_ID,
        title: PROGRAM_TITLE,
        start_date: &start.to_string(),
        time_zone: zone,
        critique_weekday: None,
        critique_time: None,
        feedback_window_hours: None,
        cohort_size: None,
        pack_path: None,
    };
    create_program(storage, &program)?;
    storage.create_cohort(COHORT_ID, PROGRAM_ID, "Demo cohort")?;
    let mut codes = Vec::new();
    for person in &LEARNERS {
        codes.push(storage.create_invite(COHORT_ID, "learner", person.name, person.time_zone, None)?);
    }
    codes.push(storage.create_invite(COHORT_ID, "facilitator", FACILITATOR.name, FACILITATOR.time_zone, None)?);
    // The program places the control learners itself, as an operator would with
    // `admin invite --program --arm control`.
    storage.create_cohort_in_arm(CONTROL_ID, PROGRAM_ID, "Control arm (practising alone)", Arm::Control)?;
    let mut control = Vec::new();
    for person in &CONTROL_LEARNERS {
        let placement = Placement { program_id: PROGRAM_ID, arm: Some(Arm::Control), seed: None };
        control.push(storage.enrol(&placement, person.name, person.time_zone, INVITE_DAYS)?.0);
    }
    Ok(Codes { cohort: codes, control })
}

/// The cohort an app developer's learners join: the simulated one is full.
pub const OPEN_COHORT_ID: &str = "demo-open";

/// Invites for joining the running demo from an app.
pub struct SpareInvites {
    /// Learner invites to the open cohort (same program, no one in it yet).
    pub learners: Vec<String>,
    /// A second facilitator of the simulated cohort: sees its dashboard and documents.
    pub facilitator: String,
}

/// Creates the open cohort and the invites `--invite` asked for.
pub fn spare_invites(storage: &dyn Storage, learners: u32) -> Result<SpareInvites, DemoError> {
    let mut codes = Vec::new();
    if learners > 0 {
        storage.create_cohort(OPEN_COHORT_ID, PROGRAM_ID, "Open cohort (apps join here)")?;
        for n in 1..=learners {
            codes.push(storage.create_invite(OPEN_COHORT_ID, "learner", &format!("App learner {n}"), "UTC", None)?);
        }
    }
    let facilitator = storage.create_invite(COHORT_ID, "facilitator", "App facilitator", "UTC", None)?;
    Ok(SpareInvites { learners: codes, facilitator })
}

/// Everyone the demo simulates, on their devices.
pub struct People {
    pub learners: Vec<Member>,
    pub facilitator: Member,
    pub control: Vec<Member>,
}

/// Opens a device database for each person and joins with their invite code, as an app would.
pub fn join_all(
    server_url: &str,
    devices: &Path,
    codes: &Codes,
    start: NaiveDate,
    seed: u64,
) -> Result<People, DemoError> {
    let cohort: Vec<&PersonSpec> = LEARNERS.iter().chain(std::iter::once(&FACILITATOR)).collect();
    let mut learners = join(server_url, devices, &cohort, &codes.cohort, start, seed, 0)?;
    let facilitator = learners.pop().ok_or_else(|| DemoError::Server("no facilitator joined".into()))?;
    let control: Vec<&PersonSpec> = CONTROL_LEARNERS.iter().collect();
    let control = join(server_url, devices, &control, &codes.control, start, seed, cohort.len())?;
    Ok(People { learners, facilitator, control })
}

fn join(
    server_url: &str,
    devices: &Path,
    people: &[&PersonSpec],
    codes: &[String],
    start: NaiveDate,
    seed: u64,
    first: usize,
) -> Result<Vec<Member>, DemoError> {
    let mut members = Vec::new();
    for (index, (person, code)) in people.iter().zip(codes).enumerate() {
        let index = first + index;
        let zone = person.time_zone.parse().unwrap_or(chrono_tz::UTC);
        // They install the app the evening before day 1.
        let evening = NaiveTime::from_hms_opt(20, 0, 0).unwrap_or_default();
        let clock = ManualClock::new(resolve_wall_clock(start.pred_opt().unwrap_or(start), evening, zone));
        let file = devices.join(format!("{:02}-{}.sqlite", index + 1, person.name.to_lowercase().replace(' ', "-")));
        let client = Client::open(&file, Arc::new(clock.clone()))?;
        let joined = client.join_server(server_url, code, &format!("{}'s phone", person.name), person.time_zone)?;
        if person.persona == Persona::LateNightTraveller {
            client.set_day_start_offset(TRAVELLER_DAY_START_MINUTES)?;
        }
        members.push(Member::new(person, client, clock, joined.user_id, seed, index as u64));
    }
    Ok(members)
}

/// The server records a member as joining on the real day they redeemed their invite, which for
/// a simulated program already under way is long after its start: the simulated people joined
/// before day 1. Dates every membership from `start` (the operator's `admin set-joined-on`),
/// before any device has fetched the roster.
pub fn date_memberships_from(storage: &dyn Storage, start: NaiveDate) -> Result<(), DemoError> {
    for cohort in [COHORT_ID, CONTROL_ID] {
        for member in storage.members(cohort)? {
            storage.set_joined_on(cohort, &member.user_id, start)?;
        }
    }
    Ok(())
}
