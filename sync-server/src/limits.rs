//! Who may ask how often. A token bucket per device for syncs; per client address for the ways in
//! that take a secret (joining with an invite code, dashboard sign-in and links), and for failed
//! authentication anywhere, so that guessing costs the guesser and not everyone else. An address
//! over its failure budget is refused (429) everywhere until its bucket refills.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::ApiError;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// The buckets' sizes.
#[derive(Debug, Clone, Copy)]
pub struct RateSettings {
    /// Requests a device may make at once, and regains per second.
    pub device_burst: u32,
    pub device_per_second: u32,
    /// Joins, sign-ins and link redemptions an address may try at once, and regains per minute.
    pub secret_burst: u32,
    pub secret_per_minute: u32,
    /// Failed authentications an address may make at once, and regains per minute.
    pub failure_burst: u32,
    pub failure_per_minute: u32,
}

impl Default for RateSettings {
    fn default() -> Self {
        Self {
            device_burst: 60,
            device_per_second: 10,
            secret_burst: 20,
            secret_per_minute: 20,
            failure_burst: 30,
            failure_per_minute: 30,
        }
    }
}

fn quota(burst: u32, period: Duration) -> Quota {
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(burst)
}

fn per(count: u32, window: Duration) -> Duration {
    window / count.max(1)
}

/// Addresses remembered as over their failure budget; pruned when it grows past this.
const MAX_BLOCKED: usize = 100_000;

pub struct RateLimits {
    devices: Keyed<String>,
    secrets: Keyed<IpAddr>,
    failures: Keyed<IpAddr>,
    /// Addresses over their failure budget, until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    clock: DefaultClock,
}

impl RateLimits {
    pub fn new(settings: RateSettings) -> Self {
        let second = Duration::from_secs(1);
        let minute = Duration::from_secs(60);
        Self {
            devices: RateLimiter::keyed(quota(settings.device_burst, per(settings.device_per_second, second))),
            secrets: RateLimiter::keyed(quota(settings.secret_burst, per(settings.secret_per_minute, minute))),
            failures: RateLimiter::keyed(quota(settings.failure_burst, per(settings.failure_per_minute, minute))),
            blocked: Mutex::default(),
            clock: DefaultClock::default(),
        }
    }

    fn check<K: Clone + Eq + std::hash::Hash>(&self, limiter: &Keyed<K>, key: &K) -> Result<(), ApiError> {
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::TooManyRequests { retry_after_secs: wait.as_secs().max(1) }
        })
    }

    /// A sync or report request by an authenticated device.
    pub fn check_device(&self, device_id: &str) -> Result<(), ApiError> {
        self.check(&self.devices, &device_id.to_owned())
    }

    /// An attempt that presents a secret to be looked up (invite code, token, link).
    pub fn check_secret_attempt(&self, address: IpAddr) -> Result<(), ApiError> {
        self.check(&self.secrets, &address)
    }

    /// Refuses an address that failed authentication too often lately.
    pub fn check_not_blocked(&self, address: IpAddr) -> Result<(), ApiError> {
        let blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        match blocked.get(&address) {
            Some(until) if *until > Instant::now() => Err(ApiError::TooManyRequests {
                retry_after_secs: until.saturating_duration_since(Instant::now()).as_secs().max(1),
            }),
            _ => Ok(()),
        }
    }

    /// Counts a failed authentication against the address.
    pub fn record_failure(&self, address: IpAddr) {
        if let Err(not_until) = self.failures.check_key(&address) {
            let until = Instant::now() + not_until.wait_time_from(self.clock.now());
            let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
            if blocked.len() >= MAX_BLOCKED {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
            }
            blocked.insert(address, until);
        }
    }

    /// Forgets buckets that are full again (run now and then, so the maps stay small).
    pub fn prune(&self) {
        for limiter in [&self.secrets, &self.failures] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.devices.retain_recent();
        self.devices.shrink_to_fit();
        let now = Instant::now();
        self.blocked.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refuse_past_their_burst_and_name_the_wait() {
        let limits =
            RateLimits::new(RateSettings { device_burst: 2, secret_burst: 1, failure_burst: 2, ..Default::default() });
        assert!(limits.check_device("d1").is_ok());
        assert!(limits.check_device("d1").is_ok());
        assert!(matches!(limits.check_device("d1"), Err(ApiError::TooManyRequests { retry_after_secs: 1.. })));
        assert!(limits.check_device("d2").is_ok(), "another device has its own bucket");

        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert!(limits.check_secret_attempt(a).is_ok());
        assert!(limits.check_secret_attempt(a).is_err());
        assert!(limits.check_secret_attempt(b).is_ok());

        for _ in 0..2 {
            limits.record_failure(a);
            assert!(limits.check_not_blocked(a).is_ok(), "within the failure budget");
        }
        limits.record_failure(a);
        assert!(matches!(limits.check_not_blocked(a), Err(ApiError::TooManyRequests { .. })));
        assert!(limits.check_not_blocked(b).is_ok());
    }
}
