//! The device's secrets live in the app's secure storage: a phone that joined with one has no
//! sign-in token and no private-text key in its database file; an older database moves them out on
//! the next open; a failing or wiped store is a typed error and never a silent sign-out.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::secrets::SecretStore;
use microcohort_core::{Client, Error, ManualClock};
use microcohort_tests::{Backend, ServerProcess, TestData, admin, program_under_way};

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");

/// A Keychain stand-in that can be made to fail.
#[derive(Default)]
struct MemoryStore {
    values: Mutex<HashMap<String, Vec<u8>>>,
    broken: AtomicBool,
}

impl MemoryStore {
    fn check(&self) -> Result<(), String> {
        if self.broken.load(Ordering::SeqCst) { Err("the keychain is locked".into()) } else { Ok(()) }
    }

    fn entries(&self) -> HashMap<String, Vec<u8>> {
        self.values.lock().unwrap().clone()
    }

    fn value_ending(&self, suffix: &str) -> Option<Vec<u8>> {
        self.entries().into_iter().find(|(name, _)| name.ends_with(suffix)).map(|(_, value)| value)
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        self.check()?;
        Ok(self.values.lock().unwrap().get(name).cloned())
    }

    fn set(&self, name: &str, value: &[u8]) -> Result<(), String> {
        self.check()?;
        self.values.lock().unwrap().insert(name.to_owned(), value.to_vec());
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<(), String> {
        self.check()?;
        self.values.lock().unwrap().remove(name);
        Ok(())
    }
}

fn open(path: &Path, clock: &ManualClock, store: Option<&Arc<MemoryStore>>) -> microcohort_core::Result<Client> {
    match store {
        Some(store) => Client::open_with_secret_store(path, Arc::new(clock.clone()), store.clone()),
        None => Client::open(path, Arc::new(clock.clone())),
    }
}

/// The database file and its write-ahead log, as a backup would copy them.
fn file_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    if let Ok(wal) = std::fs::read(path.with_extension("sqlite-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn practise_with_reflection(client: &Client, clock: &ManualClock, reflection: &str) {
    let session = client.start_practice(None).expect("a prompt today");
    clock.advance(chrono::Duration::minutes(11));
    let outcome = PracticeOutcome { duration_secs: Some(660), reflection: reflection.into(), ..Default::default() };
    client.finish_practice(session.id, &outcome).expect("finish");
}

#[test]
fn the_device_token_and_key_live_in_the_apps_secret_store_never_in_the_file() {
    let Some(data) = TestData::new(Backend::Sqlite) else { return };
    program_under_way(SERVER, data.path(), 5, &["c1"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc::now());
    let keychain = Arc::new(MemoryStore::default());

    // Ada's phone joins with the app's store: the store holds the token and the key; the file
    // neither, and everything that needs them works.
    let path = dir.path().join("ada.sqlite");
    let phone = open(&path, &clock, Some(&keychain)).unwrap();
    let invite = admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--name", "Ada"]);
    phone.join_server(&server.url(), &invite, "phone", "UTC").unwrap();
    practise_with_reflection(&phone, &clock, "private words");
    phone.sync_now().unwrap();
    let token = keychain.value_ending("/device-token").expect("the token is in the app's store");
    let key = keychain.value_ending("/person-key").expect("the key is in the app's store");
    assert_eq!(key.len(), 32);
    assert!(phone.recovery_key().unwrap().is_some());
    drop(phone);
    let bytes = file_bytes(&path);
    assert!(!contains(&bytes, &token), "the token is not in the database file");
    assert!(!contains(&bytes, &key), "the key is not in the database file");

    // Opened without the store, the database says where its secrets are instead of signing out.
    let err = open(&path, &clock, None).err().expect("no store, no sign-in");
    assert!(matches!(&err, Error::SecretStore(m) if m.contains("secure storage")), "{err:?}");

    // A store that fails is named; nothing is sent or lost, and it works once the store does.
    let phone = open(&path, &clock, Some(&keychain)).unwrap();
    practise_with_reflection(&phone, &clock, "more private words");
    keychain.broken.store(true, Ordering::SeqCst);
    let err = phone.sync_now().unwrap_err();
    assert!(matches!(&err, Error::SecretStore(m) if m.contains("keychain is locked")), "{err:?}");
    assert_eq!(phone.sync_status().unwrap().pending_practice_logs, 1);
    keychain.broken.store(false, Ordering::SeqCst);
    assert_eq!(phone.sync_now().unwrap().logs_acked, 1);

    // A wiped keychain (a restore onto another phone) means signing in again, not a crash.
    let saved = keychain.entries();
    keychain.values.lock().unwrap().clear();
    assert!(matches!(phone.sync_now(), Err(Error::Unauthorized)));
    *keychain.values.lock().unwrap() = saved;

    // Deleting her data from the phone deletes her secrets from the store.
    phone.delete_my_data().unwrap();
    assert!(keychain.entries().is_empty(), "{:?}", keychain.entries().keys());
}

#[test]
fn a_database_that_kept_its_secrets_moves_them_to_the_apps_store() {
    let Some(data) = TestData::new(Backend::Sqlite) else { return };
    program_under_way(SERVER, data.path(), 5, &["c1"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc::now());

    // An app version without a secret store kept them in the file.
    let path = dir.path().join("ben.sqlite");
    let phone = open(&path, &clock, None).unwrap();
    let invite = admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--name", "Ben"]);
    phone.join_server(&server.url(), &invite, "phone", "UTC").unwrap();
    practise_with_reflection(&phone, &clock, "kept words");
    phone.sync_now().unwrap();
    let recovery = phone.recovery_key().unwrap().expect("a key");
    drop(phone);

    // A store that fails during the move leaves everything where it was.
    let keychain = Arc::new(MemoryStore::default());
    keychain.broken.store(true, Ordering::SeqCst);
    assert!(matches!(open(&path, &clock, Some(&keychain)), Err(Error::SecretStore(_))));
    let phone = open(&path, &clock, None).expect("still the file's secrets");
    phone.sync_now().unwrap();
    drop(phone);

    // The next open with a working store moves them: the same sign-in and key, none in the file.
    keychain.broken.store(false, Ordering::SeqCst);
    let phone = open(&path, &clock, Some(&keychain)).unwrap();
    assert_eq!(phone.recovery_key().unwrap(), Some(recovery));
    practise_with_reflection(&phone, &clock, "new words");
    assert_eq!(phone.sync_now().unwrap().logs_acked, 1);
    let token = keychain.value_ending("/device-token").expect("moved token");
    let key = keychain.value_ending("/person-key").expect("moved key");
    drop(phone);
    let bytes = file_bytes(&path);
    assert!(!contains(&bytes, &token) && !contains(&bytes, &key), "nothing secret is left in the file");
}
