//! A person's devices, from any of them: list them, sign one out (a lost phone), sign out here.

use super::client::{call, http};
use super::wire::{self, DeviceInfo, DeviceList, RevokeDevice};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::store::sync_state;

impl Client {
    /// The person's devices, newest first, revoked ones included (`this_device` marks this one).
    pub fn devices(&self) -> Result<Vec<DeviceInfo>> {
        let link = self.store().read(sync_state::link)?.ok_or(Error::NotLinked)?;
        let bytes = call(http().get(format!("{}/v1/devices", link.server_url)), Some(&link.device_token))?;
        let list: DeviceList = wire::decode(&bytes).map_err(|message| Error::Server { status: 200, message })?;
        Ok(list.devices)
    }

    /// Signs out another of the person's devices (a lost or sold phone): it can no longer sync.
    pub fn sign_out_device(&self, device_id: &str) -> Result<()> {
        let link = self.store().read(sync_state::link)?.ok_or(Error::NotLinked)?;
        revoke(&link, device_id)
    }

    /// Signs out on this device: sends what is unsent, revokes this device's token on the
    /// server and deletes the person's data from it. Offline, nothing is deleted (an error says
    /// so; `delete_my_data` deletes without the server). A token already revoked elsewhere is
    /// no obstacle; what could not be sent with it is deleted with the rest.
    pub fn sign_out(&self) -> Result<()> {
        let link = self.store().read(sync_state::link)?.ok_or(Error::NotLinked)?;
        match self.sync_now().and_then(|_| revoke(&link, &link.device_id)) {
            Ok(()) | Err(Error::Unauthorized) => self.delete_my_data(),
            Err(err) => Err(err),
        }
    }
}

fn revoke(link: &sync_state::ServerLink, device_id: &str) -> Result<()> {
    let body = wire::encode(&RevokeDevice { device_id: device_id.to_owned() });
    let request = http()
        .post(format!("{}/v1/devices/revoke", link.server_url))
        .header("content-type", "application/cbor")
        .body(body);
    call(request, Some(&link.device_token)).map(|_| ())
}
