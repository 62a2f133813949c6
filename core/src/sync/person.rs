//! The device's side of a person across devices: her profile (sent when it changed here, the
//! server's adopted when another of her devices changed it later) and her practice history,
//! fetched once by a device that joined for her.

use chrono::DateTime;
use uuid::Uuid;

use super::SyncOutcome;
use super::wire::{WireLog, WireProfile};
use crate::client::{Client, ClientEvent, DataChange};
use crate::domain::practice::{TransferEvidence, TransferKind};
use crate::domain::time::{DayStart, parse_time_zone};
use crate::error::Result;
use crate::private_text::{PersonKey, PrivateText};
use crate::store::enrollment::{self, Profile};
use crate::store::practice::{self as logs, PracticeLog, PracticeStatus, PromptRef};
use crate::store::sync_state;

impl Client {
    /// After a round trip: the profile sent is the server's now (unless it changed here since),
    /// and a profile changed on another of the person's devices replaces this one's.
    pub(super) fn settle_profile(&self, sent: Option<&WireProfile>, held: Option<&WireProfile>) -> Result<()> {
        let Some(held) = held else { return Ok(()) };
        let adopted = self.store().write(|tx| {
            if let Some(sent) = sent {
                enrollment::mark_profile_synced(tx, sent.changed_at)?;
            }
            let Some(mut profile) = enrollment::profile(tx)? else { return Ok(false) };
            if enrollment::unsynced_profile(tx)?.is_some() || to_wire(&profile, held.changed_at) == *held {
                return Ok(false);
            }
            // Checked by the server; a value this app cannot use is left alone.
            let (Ok(zone), Ok(day_start)) =
                (parse_time_zone(&held.time_zone), DayStart::from_minutes(i64::from(held.day_start_minutes)))
            else {
                return Ok(false);
            };
            profile.time_zone = zone;
            profile.day_start = day_start;
            profile.reminders = held.reminders;
            enrollment::save_profile(tx, &profile)?;
            enrollment::adopt_profile(tx, held.changed_at)?;
            Ok(true)
        })?;
        if adopted {
            self.notify(ClientEvent::DataChanged(DataChange::Program));
        }
        Ok(())
    }

    /// Stores a page of the person's practice history (logs her other devices recorded; their
    /// private text never went to the server) and where the next page starts. Returns whether
    /// there is more.
    pub(super) fn restore_history(
        &self,
        page: &[WireLog],
        next: Option<u64>,
        outcome: &mut SyncOutcome,
    ) -> Result<bool> {
        let key = self.store().read(|conn| self.secrets().key(conn))?;
        let mut restored: Vec<PracticeLog> = page.iter().filter_map(|log| from_wire(log, key.as_ref())).collect();
        // Originals before their corrections.
        restored.sort_by_key(|log| (log.corrects.is_some(), log.recorded_at));
        let stored = self.store().write(|tx| {
            let mut stored = 0;
            for log in &restored {
                stored += usize::from(logs::restore_log(tx, log)?);
            }
            sync_state::save_history_progress(tx, next)?;
            Ok(stored)
        })?;
        outcome.history_logs_received += stored;
        if stored > 0 {
            self.notify(ClientEvent::DataChanged(DataChange::Practice));
        }
        Ok(next.is_some())
    }
}

pub(super) fn to_wire(profile: &Profile, changed_at: i64) -> WireProfile {
    WireProfile {
        time_zone: profile.time_zone.name().to_owned(),
        day_start_minutes: profile.day_start.minutes(),
        reminders: profile.reminders,
        changed_at,
    }
}

/// A log as the server relays it, its private text opened with the person's key when this device
/// has it (otherwise left empty until it does); one this app cannot read is left out.
fn from_wire(log: &WireLog, key: Option<&PersonKey>) -> Option<PracticeLog> {
    let private = match (key, &log.sealed) {
        (Some(key), Some(sealed)) => key.open(&log.id, sealed).unwrap_or_else(|err| {
            tracing::warn!(log = %log.id, %err, "private text left closed");
            PrivateText::default()
        }),
        _ => PrivateText::default(),
    };
    let transfer = match log.transfer_kind.as_deref() {
        Some(kind) => Some(TransferEvidence {
            kind: TransferKind::parse(kind)?,
            note: private.transfer_note.unwrap_or_default(),
            link: private.transfer_link,
        }),
        None => None,
    };
    Some(PracticeLog {
        id: Uuid::parse_str(&log.id).ok()?,
        program_id: log.program_id.clone(),
        prompt: PromptRef {
            pack_id: log.pack_id.clone(),
            pack_version: log.pack_version,
            prompt_id: log.prompt_id.clone(),
        },
        started_at: DateTime::from_timestamp_millis(log.started_at)?,
        time_zone: log.time_zone.clone(),
        local_date: log.local_date.parse().ok()?,
        status: match log.status.as_str() {
            "completed" => PracticeStatus::Completed,
            "abandoned" => PracticeStatus::Abandoned,
            _ => return None,
        },
        duration_secs: log.duration_secs,
        reflection: private.reflection,
        transfer,
        corrects: match &log.corrects {
            Some(id) => Some(Uuid::parse_str(id).ok()?),
            None => None,
        },
        recorded_at: DateTime::from_timestamp_millis(log.recorded_at)?,
    })
}
