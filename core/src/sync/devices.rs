//! A person's devices, from any of them: link a new one (a code, and a payload that also carries
//! her private-text key), list them, sign one out (a lost phone), sign out here.

use super::JoinOutcome;
use super::client::{call, decoded, http, post};
use super::wire::{self, DashboardLink, DeviceInfo, DeviceList, JoinResponse, LinkCode, LinkRequest, RevokeDevice};
use crate::client::Client;
use crate::domain::DomainError;
use crate::domain::time::parse_time_zone;
use crate::error::{Error, Result};
use crate::private_text::PersonKey;
use crate::store::sync_state;

impl Client {
    /// The person's devices, newest first, revoked ones included (`this_device` marks this one).
    pub fn devices(&self) -> Result<Vec<DeviceInfo>> {
        let link = self.server_link()?;
        let bytes = call(http().get(format!("{}/v1/devices", link.server_url)), Some(&link.device_token))?;
        let list: DeviceList = decoded(&bytes)?;
        Ok(list.devices)
    }

    /// Signs out another of the person's devices (a lost or sold phone): it can no longer sync.
    pub fn sign_out_device(&self, device_id: &str) -> Result<()> {
        let link = self.server_link()?;
        revoke(&link, device_id)
    }

    /// Signs out on this device: sends what is unsent, revokes this device's token on the
    /// server and deletes the person's data from it. Offline, nothing is deleted (an error says
    /// so; `delete_my_data` deletes without the server). A token already revoked elsewhere is
    /// no obstacle; what could not be sent with it is deleted with the rest.
    pub fn sign_out(&self) -> Result<()> {
        let link = self.server_link()?;
        match self.sync_now().and_then(|_| revoke(&link, &link.device_id)) {
            Ok(()) | Err(Error::Unauthorized) => self.delete_my_data(),
            Err(err) => Err(err),
        }
    }
}

/// POSTs a CBOR body (empty for some paths) as this device, about its membership of `cohort_id`.
pub(super) fn post_signed_in(
    link: &sync_state::ServerLink,
    path: &str,
    cohort_id: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>> {
    let request = http()
        .post(format!("{}{path}", link.server_url))
        .header("content-type", "application/cbor")
        .header(wire::COHORT_HEADER, cohort_id)
        .body(body);
    call(request, Some(&link.device_token))
}

fn not_this_server() -> Error {
    DomainError::invalid(
        "server_url",
        "the server at this address does not know this device; to use another server, sign out and join it with an invite",
    )
    .into()
}

fn revoke(link: &sync_state::ServerLink, device_id: &str) -> Result<()> {
    let body = wire::encode(&RevokeDevice { device_id: device_id.to_owned() });
    let request = http()
        .post(format!("{}/v1/devices/revoke", link.server_url))
        .header("content-type", "application/cbor")
        .body(body);
    call(request, Some(&link.device_token)).map(|_| ())
}

/// What one device shows to link another of the person's devices, valid once for 10 minutes:
/// `payload` (for a QR code, or to paste) carries the server, the code and the key her private
/// text is sealed with; `code` alone links a device that then needs the recovery key to open
/// her private text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLink {
    pub code: String,
    pub payload: String,
    pub expires_at_ms: i64,
}

const PAYLOAD_PREFIX: &str = "microcohort-link:1:";

/// `microcohort-link:1:<server URL, base64url>:<code>:<recovery key, or "-" without one>`.
fn encode_payload(server_url: &str, code: &str, key: Option<&PersonKey>) -> String {
    let server = data_encoding::BASE64URL_NOPAD.encode(server_url.as_bytes());
    let key = key.map_or_else(|| "-".to_owned(), |k| k.recovery_text().replace('-', ""));
    format!("{PAYLOAD_PREFIX}{server}:{}:{key}", code.replace('-', ""))
}

fn parse_payload(payload: &str) -> Result<(String, String, Option<PersonKey>)> {
    let bad = |problem: &str| Error::from(DomainError::invalid("link", problem));
    let rest = payload.trim().strip_prefix(PAYLOAD_PREFIX).ok_or_else(|| bad("not a Microcohort device link"))?;
    let mut parts = rest.split(':');
    let (Some(server), Some(code), Some(key), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad("a device link has a server, a code and a key"));
    };
    let server = data_encoding::BASE64URL_NOPAD
        .decode(server.as_bytes())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| bad("its server address is damaged"))?;
    let key = match key {
        "-" => None,
        text => Some(PersonKey::from_recovery_text(text).map_err(|e| bad(&e.to_string()))?),
    };
    Ok((super::server_address(&server)?, code.to_owned(), key))
}

impl Client {
    /// A link for another of the person's devices (see [`DeviceLink`]).
    pub fn create_device_link(&self) -> Result<DeviceLink> {
        let link = self.server_link()?;
        let request =
            http().post(format!("{}/v1/link-codes", link.server_url)).header("content-type", "application/cbor");
        let bytes = call(request, Some(&link.device_token))?;
        let code: LinkCode = decoded(&bytes)?;
        let key = self.store().read(|conn| self.secrets().key(conn))?;
        Ok(DeviceLink {
            payload: encode_payload(&link.server_url, &code.code, key.as_ref()),
            code: code.code,
            expires_at_ms: code.expires_at,
        })
    }

    /// Links this device for the person whose other device shows `payload`: her program, cohort,
    /// practice history, settings and private text (with the key the payload carries).
    pub fn link_device(&self, payload: &str, device_name: &str, time_zone: &str) -> Result<JoinOutcome> {
        let (server, code, key) = parse_payload(payload)?;
        self.redeem_link(&server, &code, device_name, time_zone, key)
    }

    /// Links this device with the code alone (typed from the other screen): everything but her
    /// private text, which opens once the recovery key is entered.
    pub fn link_device_with_code(
        &self,
        server_url: &str,
        code: &str,
        device_name: &str,
        time_zone: &str,
    ) -> Result<JoinOutcome> {
        self.redeem_link(&super::server_address(server_url)?, code, device_name, time_zone, None)
    }

    fn redeem_link(
        &self,
        server_url: &str,
        code: &str,
        device_name: &str,
        time_zone: &str,
        key: Option<PersonKey>,
    ) -> Result<JoinOutcome> {
        parse_time_zone(time_zone)?;
        let body = wire::encode(&LinkRequest {
            link_code: code.trim().to_owned(),
            device_name: device_name.to_owned(),
            expected_user: self.current_person()?,
        });
        let (joined, _): (JoinResponse, usize) =
            post(&format!("{server_url}/v1/link"), None, body).map_err(super::client::wrong_address)?;
        self.finish_join(server_url, joined, time_zone, key)
    }

    /// Moves this device to the server's new address (the operator moved it): the server at
    /// `server_url` must know this device, or nothing changes and the error says so. Joining a
    /// different server is signing out and joining there with an invite.
    pub fn change_server(&self, server_url: &str) -> Result<()> {
        let url = super::server_address(server_url)?;
        let link = self.server_link()?;
        let request = http().get(format!("{url}/v1/devices"));
        match call(request, Some(&link.device_token)).map_err(super::client::wrong_address) {
            Ok(bytes) => {
                let known: DeviceList = decoded(&bytes)?;
                if !known.devices.iter().any(|d| d.this_device && d.device_id == link.device_id) {
                    return Err(not_this_server());
                }
            }
            Err(Error::Unauthorized) => return Err(not_this_server()),
            Err(err) => return Err(err),
        }
        self.store().write(|tx| sync_state::move_link(tx, &url))?;
        self.notify(crate::client::ClientEvent::SyncStatusChanged);
        Ok(())
    }

    /// Leaves the selected membership's cohort: sends what is unsent, the server records today
    /// as her last day in it (her facilitators and the reports show it) and her devices stop
    /// syncing it; this device drops the cohort's documents and selects another of her
    /// memberships, if any. Her practice history, settings and key stay on it.
    pub fn leave_cohort(&self) -> Result<()> {
        let link = self.server_link()?;
        let cohort_id = self.membership()?.cohort_id;
        self.sync_now()?;
        post_signed_in(&link, "/v1/leave", &cohort_id, Vec::new())?;
        self.forget_cohort(&cohort_id)
    }

    /// A one-time link that opens the web dashboard in a browser as this facilitator (of the
    /// selected membership's cohort), for a few minutes (the app opens it; the device token
    /// never leaves the app).
    pub fn dashboard_sign_in_link(&self) -> Result<String> {
        let link = self.server_link()?;
        let cohort_id = self.membership()?.cohort_id;
        let made: DashboardLink = decoded(&post_signed_in(&link, "/v1/dashboard-links", &cohort_id, Vec::new())?)?;
        Ok(format!("{}{}", link.server_url, made.path))
    }

    /// The key her private text is sealed with, as she writes it down (for when every device is
    /// lost); `None` on a device that does not have it.
    pub fn recovery_key(&self) -> Result<Option<String>> {
        Ok(self.store().read(|conn| self.secrets().key(conn))?.map(|k| k.recovery_text()))
    }

    /// Enters the recovery key on this device: her private text from other devices opens with
    /// the next sync, and what she writes here is sealed with it.
    pub fn restore_recovery_key(&self, text: &str) -> Result<()> {
        let key =
            PersonKey::from_recovery_text(text).map_err(|e| DomainError::invalid("recovery_key", e.to_string()))?;
        self.store().write(|tx| {
            self.secrets().keep_key(tx, &key)?;
            // Fetch her history again so its private text fills in.
            sync_state::save_history_progress(tx, Some(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_payload_round_trips_and_bad_ones_are_named() {
        let key = PersonKey::generate();
        let payload = encode_payload("https://sync.example.org:8443", "K7QM-3XHD-9TRB-W2FC", Some(&key));
        let (server, code, parsed) = parse_payload(&payload).unwrap();
        assert_eq!((server.as_str(), code.as_str()), ("https://sync.example.org:8443", "K7QM3XHD9TRBW2FC"));
        assert_eq!(parsed, Some(key));
        let keyless = encode_payload("http://127.0.0.1:8787", "AAAA", None);
        assert_eq!(parse_payload(&keyless).unwrap().2, None);
        for bad in ["hello", "microcohort-link:1:x", "microcohort-link:1:!!:AAAA:-", "microcohort-link:1:aGk:AAAA:ZZZZ"]
        {
            let err = parse_payload(bad).unwrap_err();
            assert!(err.to_string().contains("link"), "{bad}: {err}");
        }
    }
}
