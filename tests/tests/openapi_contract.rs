//! The OpenAPI description in `sync-server/openapi.json`, checked against the running server:
//! every documented operation answers with documented status codes, and the CBOR bodies carry
//! exactly the documented required fields.

use std::collections::BTreeSet;
use std::path::Path;

use microcohort_core::domain::critique_week::CritiqueWeekChange;
use microcohort_core::domain::facilitation::FacilitatorAction;
use microcohort_core::sync::wire::{
    self, DocPush, JoinRequest, LinkRequest, MembershipSyncs, RevokeDevice, SyncRequest,
};
use microcohort_tests::{
    ServerProcess, admin, http_get, http_request, program_under_way, raw_get, raw_post, session_cookie,
};
use serde_json::Value;

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");

fn spec() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sync-server/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn documented(spec: &Value, path: &str, method: &str) -> BTreeSet<u16> {
    spec["paths"][path][method]["responses"].as_object().unwrap().keys().map(|k| k.parse().unwrap()).collect()
}

fn required(spec: &Value, schema: &str) -> BTreeSet<String> {
    spec["components"]["schemas"][schema]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Every field a schema describes, required or not.
fn documented_fields(spec: &Value, schema: &str) -> BTreeSet<String> {
    spec["components"]["schemas"][schema]["properties"].as_object().unwrap().keys().cloned().collect()
}

fn keys(value: &ciborium::Value) -> BTreeSet<String> {
    value.as_map().unwrap().iter().filter_map(|(k, _)| k.as_text().map(str::to_owned)).collect()
}

fn field<'a>(value: &'a ciborium::Value, name: &str) -> &'a ciborium::Value {
    value.as_map().unwrap().iter().find(|(k, _)| k.as_text() == Some(name)).map(|(_, v)| v).unwrap()
}

#[test]
fn the_running_server_matches_its_openapi_description() {
    let spec = spec();
    let paths: BTreeSet<&str> = spec["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        BTreeSet::from([
            "/healthz",
            "/metrics",
            "/v1/join",
            "/v1/sync",
            "/v1/sync/memberships",
            "/v1/memberships",
            "/v1/devices",
            "/v1/devices/revoke",
            "/v1/link-codes",
            "/v1/link",
            "/v1/leave",
            "/v1/critique-weeks",
            "/v1/facilitator-actions",
            "/v1/dashboard-links",
            "/v1/programs/{program_id}/report",
            "/v1/programs/{program_id}/report.csv",
            "/dashboard",
            "/dashboard/sign-out",
            "/dashboard/link/{code}",
            "/dashboard/programs/{program_id}",
        ])
    );

    let data = tempfile::tempdir().unwrap();
    program_under_way(SERVER, data.path(), 8, &["c1"]);
    let code = admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--name", "Ana"]);
    let server = ServerProcess::start(SERVER, data.path(), &[]);

    for path in ["/healthz", "/metrics"] {
        let (status, _) = raw_get(server.address, path);
        assert!(documented(&spec, path, "get").contains(&status), "{path} answered {status}");
    }

    let join_codes = documented(&spec, "/v1/join", "post");
    let (status, _, _) = raw_post(server.address, "/v1/join", None, b"garbage");
    assert!(join_codes.contains(&status) && status == 400);
    let join = |code: &str| {
        raw_post(
            server.address,
            "/v1/join",
            None,
            &wire::encode(&JoinRequest { invite_code: code.into(), device_name: "d".into(), expected_user: None }),
        )
    };
    let (status, _, body) = join(&code);
    assert_eq!(status, 200);
    let joined: ciborium::Value = ciborium::from_reader(body.as_slice()).unwrap();
    assert_eq!(keys(&joined), required(&spec, "JoinResponse"));
    assert_eq!(keys(field(&joined, "program")), required(&spec, "ProgramInfo"));
    assert_eq!(keys(field(field(&joined, "program"), "pack")), required(&spec, "PackFile"));
    let (status, _, _) = join(&code);
    assert!(join_codes.contains(&status) && status == 403, "a used code: {status}");

    let token = field(&joined, "device_token").as_text().unwrap().to_owned();
    let sync_codes = documented(&spec, "/v1/sync", "post");
    let request =
        SyncRequest { docs: vec![DocPush { doc_id: "week:c1:1".into(), ..Default::default() }], ..Default::default() };
    let encoded = wire::encode(&request);
    let sent: ciborium::Value = ciborium::from_reader(encoded.as_slice()).unwrap();
    let fields = keys(&sent);
    assert!(required(&spec, "SyncRequest").is_subset(&fields), "{fields:?}");
    assert!(fields.is_subset(&documented_fields(&spec, "SyncRequest")), "{fields:?}");
    let (status, _, body) = raw_post(server.address, "/v1/sync", Some(&token), &encoded);
    assert_eq!(status, 200);
    let answer: ciborium::Value = ciborium::from_reader(body.as_slice()).unwrap();
    let answer_keys = keys(&answer);
    assert!(answer_keys.is_superset(&required(&spec, "SyncResponse")));
    let documented_keys: BTreeSet<String> =
        spec["components"]["schemas"]["SyncResponse"]["properties"].as_object().unwrap().keys().cloned().collect();
    assert!(answer_keys.is_subset(&documented_keys), "no undocumented fields: {answer_keys:?}");
    let pull = &field(&answer, "docs").as_array().unwrap()[0];
    assert_eq!(keys(pull), required(&spec, "DocPull"));

    for (token, body, expected) in [
        (None, encoded.clone(), 401),
        (Some(token.as_str()), b"\x00garbage".to_vec(), 400),
        (Some(token.as_str()), vec![0u8; 5 * 1024 * 1024], 413),
    ] {
        let (status, _, _) = raw_post(server.address, "/v1/sync", token, &body);
        assert_eq!(status, expected);
        assert!(sync_codes.contains(&status), "{status} is not documented for /v1/sync");
    }
    let other = wire::encode(&SyncRequest {
        docs: vec![DocPush { doc_id: "week:zz:1".into(), ..Default::default() }],
        ..Default::default()
    });
    let (status, _, _) = raw_post(server.address, "/v1/sync", Some(&token), &other);
    assert!(sync_codes.contains(&status) && status == 403);

    people_match_their_description(&spec, &server, &token);
    critique_weeks_match_their_description(&spec, &server, data.path(), &token);
    reports_match_their_description(&spec, &server, data.path());
}

/// A facilitator's change of a week answers with the documented fields; a learner and garbage
/// are refused as documented.
fn critique_weeks_match_their_description(spec: &Value, server: &ServerProcess, data: &Path, learner: &str) {
    let path = wire::CRITIQUE_WEEKS_PATH;
    let codes = documented(spec, path, "post");
    let code = admin(SERVER, data, &["invite", "--cohort", "c1", "--role", "facilitator", "--name", "Fay"]);
    let join = JoinRequest { invite_code: code, device_name: "d".into(), expected_user: None };
    let (_, _, body) = raw_post(server.address, "/v1/join", None, &wire::encode(&join));
    let joined: wire::JoinResponse = wire::decode(&body).unwrap();
    let change = CritiqueWeekChange { week: 2, link: Some("https://meet.example/w2".into()), ..Default::default() };
    let encoded = wire::encode(&change);
    let sent: ciborium::Value = ciborium::from_reader(encoded.as_slice()).unwrap();
    assert!(required(spec, "CritiqueWeekChange").is_subset(&keys(&sent)));
    assert!(keys(&sent).is_subset(&documented_fields(spec, "CritiqueWeekChange")), "{:?}", keys(&sent));
    let (status, _, body) = raw_post(server.address, path, Some(&joined.device_token), &encoded);
    assert!(codes.contains(&status) && status == 200, "{status}");
    let answer: ciborium::Value = ciborium::from_reader(body.as_slice()).unwrap();
    assert!(required(spec, "CritiqueWeek").is_subset(&keys(&answer)));
    assert!(keys(&answer).is_subset(&documented_fields(spec, "CritiqueWeek")), "{:?}", keys(&answer));
    for (token, body, expected) in [
        (Some(learner), encoded.clone(), 403),
        (Some(joined.device_token.as_str()), b"\x00garbage".to_vec(), 400),
        (None, encoded.clone(), 401),
    ] {
        let (status, _, _) = raw_post(server.address, path, token, &body);
        assert!(codes.contains(&status) && status == expected, "{status}, expected {expected}");
    }

    // The facilitator's actions: a note to a member (its fields as documented), then refusals.
    let path = wire::FACILITATOR_ACTIONS_PATH;
    let codes = documented(spec, path, "post");
    let member = joined.user_id.clone();
    let note = FacilitatorAction::Note { id: "n1".into(), member, body: "Ten minutes today?".into() };
    let encoded = wire::encode(&note);
    let sent: ciborium::Value = ciborium::from_reader(encoded.as_slice()).unwrap();
    let variants = spec["components"]["schemas"]["FacilitatorAction"]["oneOf"].as_array().unwrap();
    let documented_note = variants.iter().find(|v| v["properties"]["action"]["const"] == "note").unwrap();
    let note_fields: BTreeSet<String> = documented_note["properties"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys(&sent), note_fields);
    let (status, _, _) = raw_post(server.address, path, Some(&joined.device_token), &encoded);
    assert!(codes.contains(&status) && status == 204, "{status}");
    let missing = FacilitatorAction::Show { week: 1, entry: "nobody/nothing".into() };
    for (token, body, expected) in [
        (Some(learner), encoded.clone(), 403),
        (Some(joined.device_token.as_str()), wire::encode(&missing), 404),
        (Some(joined.device_token.as_str()), b"\x00garbage".to_vec(), 400),
        (None, encoded.clone(), 401),
    ] {
        let (status, _, _) = raw_post(server.address, path, token, &body);
        assert!(codes.contains(&status) && status == expected, "{status}, expected {expected}");
    }
}

/// A person's devices, link codes and the app's dashboard link answer as documented.
fn people_match_their_description(spec: &Value, server: &ServerProcess, token: &str) {
    let (status, _, body) = raw_get_with_token(server, "/v1/devices", token);
    assert!(documented(spec, "/v1/devices", "get").contains(&status) && status == 200);
    let list: ciborium::Value = ciborium::from_reader(body.as_slice()).unwrap();
    assert_eq!(keys(&field(&list, "devices").as_array().unwrap()[0]), required(spec, "DeviceInfo"));
    let (status, _, body) = raw_post(server.address, "/v1/link-codes", Some(token), &[]);
    assert!(documented(spec, "/v1/link-codes", "post").contains(&status) && status == 200);
    let code: ciborium::Value = ciborium::from_reader(body.as_slice()).unwrap();
    assert_eq!(keys(&code), required(spec, "LinkCode"));
    let wrong = wire::encode(&LinkRequest { link_code: "WRONG".into(), device_name: "d".into(), expected_user: None });
    let (status, _, _) = raw_post(server.address, "/v1/link", None, &wrong);
    assert!(documented(spec, "/v1/link", "post").contains(&status) && status == 403);
    let (status, _, _) = raw_post(server.address, "/v1/dashboard-links", Some(token), &[]);
    assert!(documented(spec, "/v1/dashboard-links", "post").contains(&status) && status == 403, "a learner: {status}");
    let revoke = wire::encode(&RevokeDevice { device_id: "nope".into() });
    let (status, _, _) = raw_post(server.address, "/v1/devices/revoke", Some(token), &revoke);
    assert!(documented(spec, "/v1/devices/revoke", "post").contains(&status) && status == 404);
    memberships_match_their_description(spec, server, token);
}

/// Her memberships, and one round trip for several: a cohort she is not in is refused on its own.
fn memberships_match_their_description(spec: &Value, server: &ServerProcess, token: &str) {
    let (status, _, body) = raw_get_with_token(server, "/v1/memberships", token);
    assert!(documented(spec, "/v1/memberships", "get").contains(&status) && status == 200);
    let list: ciborium::Value = ciborium::from_reader(body.as_slice()).unwrap();
    assert_eq!(keys(&list), required(spec, "MembershipList"));
    let first = &field(&list, "memberships").as_array().unwrap()[0];
    assert_eq!(keys(first), required(spec, "MembershipInfo"));

    let codes = documented(spec, "/v1/sync/memberships", "post");
    let for_cohort = |cohort: Option<&str>| SyncRequest { cohort_id: cohort.map(str::to_owned), ..Default::default() };
    let batch = MembershipSyncs { requests: vec![for_cohort(Some("c1")), for_cohort(Some("zz"))] };
    let (status, _, body) = raw_post(server.address, "/v1/sync/memberships", Some(token), &wire::encode(&batch));
    assert!(codes.contains(&status) && status == 200, "{status}");
    let answers: ciborium::Value = ciborium::from_reader(body.as_slice()).unwrap();
    assert_eq!(keys(&answers), required(spec, "MembershipAnswers"));
    let answers = field(&answers, "answers").as_array().unwrap();
    assert_eq!(keys(&answers[0]), required(spec, "MembershipAnswer"));
    assert!(!field(&answers[0], "response").is_null() && field(&answers[0], "refused").is_null());
    assert!(field(&answers[1], "response").is_null(), "not her cohort");
    let refused = field(&answers[1], "refused").as_array().unwrap();
    assert_eq!(refused[0].as_integer().map(i128::from), Some(403));
    let unnamed = MembershipSyncs { requests: vec![for_cohort(None)] };
    let (status, _, _) = raw_post(server.address, "/v1/sync/memberships", Some(token), &wire::encode(&unnamed));
    assert!(codes.contains(&status) && status == 400, "a request without its cohort: {status}");
    let many = MembershipSyncs { requests: vec![for_cohort(Some("c1")); 17] };
    let (status, _, _) = raw_post(server.address, "/v1/sync/memberships", Some(token), &wire::encode(&many));
    assert!(codes.contains(&status) && status == 413, "{status}");
}

fn raw_get_with_token(server: &ServerProcess, path: &str, token: &str) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.address).expect("connect");
    let address = server.address;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(response.len());
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head, response.get(split + 4..).unwrap_or_default().to_vec())
}

/// The program report's JSON carries exactly the documented fields, and its refusals are documented.
fn reports_match_their_description(spec: &Value, server: &ServerProcess, data: &Path) {
    let properties = |schema: &str| -> BTreeSet<String> {
        spec["components"]["schemas"][schema]["properties"].as_object().unwrap().keys().cloned().collect()
    };
    let object_keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    let report_codes = documented(spec, "/v1/programs/{program_id}/report", "get");
    let link = admin(SERVER, data, &["dashboard-link", "--program", "p1", "--base-url", &server.url()]);
    let path = link.strip_prefix(&server.url()).unwrap();
    let (status, _, _) = http_get(server.address, path, &[]);
    assert!(documented(spec, "/dashboard/link/{code}", "get").contains(&status) && status == 200);
    let (status, headers, _) = http_request(server.address, "POST", path, &[]);
    assert!(documented(spec, "/dashboard/link/{code}", "post").contains(&status) && status == 303);
    let cookie = session_cookie(&headers).unwrap();
    let (status, _, body) = http_get(server.address, "/v1/programs/p1/report", &[("Cookie", &cookie)]);
    assert_eq!(status, 200);
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(object_keys(&report), properties("ProgramReport"));
    assert_eq!(object_keys(&report), required(spec, "ProgramReport"));
    let cohort = &report["cohorts"][0];
    assert_eq!(object_keys(cohort), required(spec, "CohortReport"));
    assert_eq!(object_keys(&cohort["members"][0]), required(spec, "MemberReport"));
    let with_cookie = [("Cookie", cookie.as_str())];
    for (path, credentials, expected) in [
        ("/v1/programs/p1/report", &[][..], 401),
        ("/v1/programs/p2/report", &with_cookie[..], 403),
        ("/v1/programs/p1/report?baseline=zz", &with_cookie[..], 400),
    ] {
        let (status, _, _) = http_get(server.address, path, credentials);
        assert!(report_codes.contains(&status) && status == expected, "{path}: {status}");
    }
}
