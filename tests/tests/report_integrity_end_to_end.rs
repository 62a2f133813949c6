//! Figures no device can forge: with hostile devices holding real tokens, over a real server, a
//! correction of someone else's practice, back-dated, mis-dated and future practice, and feedback
//! on a submission that does not exist or on one's own leave every figure of the program report
//! and of the facilitator's dashboard as it was; honest offline back-fill inside the window counts;
//! lateness is what the server saw, not what the author wrote.

use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::{ActorId, ObjType};
use chrono::{DateTime, Days, Duration, NaiveDate, Utc};
use microcohort_core::docs::{DocId, genesis};
use microcohort_core::domain::cohort_metrics::CohortReport;
use microcohort_core::domain::practice::PracticeOutcome;
use microcohort_core::sync::wire::{self, DocPush, DocStatus, RefusedLog, SyncRequest, SyncResponse, WireLog};
use microcohort_core::{Client, FeedbackInput, Lateness, ManualClock};
use microcohort_server::report::ProgramReport;
use microcohort_tests::forge::Forger;
use microcohort_tests::{
    Backend, ServerProcess, TestData, admin, http_get, on_both_backends, program_under_way, raw_join, raw_post,
    sign_in_with_link,
};
use serde_bytes::ByteBuf;

const SERVER: &str = env!("CARGO_BIN_EXE_microcohort-server-under-test");

on_both_backends!(forged_inputs_leave_every_figure_unchanged);

/// A device that syncs with hand-written requests.
struct Forging {
    token: String,
    user: String,
}

impl Forging {
    fn sync(&self, server: &ServerProcess, request: &SyncRequest) -> SyncResponse {
        let (status, _, bytes) = raw_post(server.address, "/v1/sync", Some(&self.token), &wire::encode(request));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        wire::decode(&bytes).expect("a sync response")
    }

    fn upload(&self, server: &ServerProcess, logs: Vec<WireLog>) -> SyncResponse {
        self.sync(server, &SyncRequest { practice_logs: logs, ..Default::default() })
    }
}

/// A completed practice log as a device would write it, started at `started` in UTC on `day`.
fn log(started: DateTime<Utc>, day: NaiveDate, corrects: Option<String>) -> WireLog {
    WireLog {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: String::new(),
        program_id: "p1".into(),
        pack_id: "everyday-leadership".into(),
        pack_version: 1,
        prompt_id: "d01".into(),
        started_at: started.timestamp_millis(),
        time_zone: "UTC".into(),
        local_date: day.to_string(),
        status: "completed".into(),
        duration_secs: Some(600),
        transfer_kind: Some("applied_at_work".into()),
        corrects,
        recorded_at: started.timestamp_millis(),
        sealed: None,
        late_arrival: false,
    }
}

fn practise(client: &Client, clock: &ManualClock, at: DateTime<Utc>) -> uuid::Uuid {
    clock.set(at);
    let session = client.start_practice(None).expect("a prompt");
    clock.set(at + Duration::minutes(10));
    client.finish_practice(session.id, &PracticeOutcome { duration_secs: Some(600), ..Default::default() }).unwrap().id
}

fn reasons(response: &SyncResponse) -> Vec<&str> {
    response.practice_logs_refused.iter().map(|r: &RefusedLog| r.reason.as_str()).collect()
}

/// Every figure, with the late arrivals (which forgeries may add to) set apart.
fn without_late_arrivals(mut report: CohortReport) -> (CohortReport, Vec<(String, u32)>) {
    let late = report.members.iter().map(|m| (m.user_id.clone(), m.late_arrivals)).collect();
    for member in &mut report.members {
        member.late_arrivals = 0;
    }
    (report, late)
}

fn forged_inputs_leave_every_figure_unchanged(backend: Backend) {
    let Some(data) = TestData::new(backend) else { return };
    let start = program_under_way(SERVER, data.path(), 30, &["c1"]);
    let invite = |role: &str, name: &str| {
        admin(SERVER, data.path(), &["invite", "--cohort", "c1", "--role", role, "--name", name])
    };
    let codes = [invite("learner", "Ada"), invite("learner", "Ben"), invite("facilitator", "Fay")];
    let (mallory_code, rogue_code) = (invite("learner", "Mallory"), invite("facilitator", "Rog"));
    let server = ServerProcess::start(SERVER, data.path(), &[]);
    // Every clock reads the same instant: 10:00 UTC today or, before that, yesterday.
    let day = (Utc::now() - Duration::hours(11)).date_naive();
    let now = day.and_hms_opt(10, 0, 0).unwrap().and_utc();
    let clock = ManualClock::new(now);
    let devices: Vec<Client> = codes
        .iter()
        .map(|code| {
            let client = Client::open_in_memory(Arc::new(clock.clone())).unwrap();
            client.join_server(&server.url(), code, "phone", "UTC").unwrap();
            client
        })
        .collect();
    let (ada, ben, fay) = (&devices[0], &devices[1], &devices[2]);
    let forging = |code: &str| {
        let joined = raw_join(&server, code);
        admin(SERVER, data.path(), &["set-joined-on", "--cohort", "c1", "--user", &joined.user_id, "--date", &start]);
        Forging { token: joined.device_token, user: joined.user_id }
    };
    let (mallory, rogue) = (forging(&mallory_code), forging(&rogue_code));

    // Ada practised offline on five days and syncs once: honest back-fill inside the window.
    let mut ada_logs = Vec::new();
    for back in (0..5u64).rev() {
        ada_logs.push(practise(ada, &clock, (day - Days::new(back)).and_hms_opt(8, 0, 0).unwrap().and_utc()));
    }
    let ada_shared = ada.share_practice(*ada_logs.last().unwrap(), "Listening", "I waited").unwrap();
    let ben_log = practise(ben, &clock, day.and_hms_opt(9, 0, 0).unwrap().and_utc());
    let ben_shared = ben.share_practice(ben_log, "Asking", "I asked first").unwrap();
    clock.set(now);
    for client in [ada, ben, ada, ben] {
        client.sync_now().unwrap();
    }
    ada.give_feedback(&ben_shared, &FeedbackInput { body: "Clear question.".into(), ..Default::default() }).unwrap();
    let ben_feedback =
        ben.give_feedback(&ada_shared, &FeedbackInput { body: "Good pause.".into(), ..Default::default() }).unwrap();
    for client in [ada, ben, fay] {
        client.sync_now().unwrap();
    }

    // Mallory shares work of her own (a real submission, so it counts before the forgeries).
    let week = ada.today().unwrap().position.week.expect("the program is under way");
    let doc = DocId::week("c1", week);
    let fetch = |who: &Forging, doc: &DocId| {
        let request =
            SyncRequest { docs: vec![DocPush { doc_id: doc.to_string(), ..Default::default() }], ..Default::default() };
        let pull = who.sync(&server, &request).docs.remove(0);
        let heads: Vec<ByteBuf> = pull.server_heads.clone();
        (Forger::from_changes(genesis(doc), &pull.changes), heads)
    };
    let actor = ActorId::random();
    let entry = |forger: &Forger, container: &str, key: String, fields: Vec<(&'static str, automerge::ScalarValue)>| {
        let parent = forger.container(container);
        forger.change(&actor, |d| {
            let entry = d.put_object(&parent, key.as_str(), ObjType::Map).unwrap();
            for (name, value) in fields {
                d.put(&entry, name, value).unwrap();
            }
        })
    };
    let push = |who: &Forging, doc: &DocId, heads: Vec<ByteBuf>, change: automerge::Change| {
        let request = SyncRequest {
            docs: vec![DocPush {
                doc_id: doc.to_string(),
                known_server_heads: heads,
                changes: vec![ByteBuf::from(change.raw_bytes().to_vec())],
                ..Default::default()
            }],
            ..Default::default()
        };
        who.sync(&server, &request).docs.remove(0).status
    };
    let (forger, heads) = fetch(&mallory, &doc);
    let own_key = format!("{}/own", mallory.user);
    let own = entry(
        &forger,
        "submissions",
        own_key.clone(),
        vec![
            ("kind", "practice".into()),
            ("title", "Mine".into()),
            ("body", "My work".into()),
            ("prompt_id", "".into()),
            ("attachments", "[]".into()),
            ("created_at", automerge::ScalarValue::Int(now.timestamp_millis())),
            ("retracted", false.into()),
        ],
    );
    assert_eq!(push(&mallory, &doc, heads, own), DocStatus::Ok);

    // The figures every forgery below must leave as they are.
    let link = admin(SERVER, data.path(), &["dashboard-link", "--program", "p1", "--base-url", &server.url()]);
    let cookie = sign_in_with_link(server.address, link.strip_prefix(&server.url()).unwrap());
    let report = || {
        let path = format!("/v1/programs/p1/report?at={}", now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let (status, _, body) = http_get(server.address, &path, &[("Cookie", &cookie)]);
        assert_eq!(status, 200, "{body}");
        let report: ProgramReport = serde_json::from_str(&body).unwrap();
        without_late_arrivals(report.cohorts.into_iter().find(|c| c.cohort_id == "c1").unwrap())
    };
    let dashboard = || {
        fay.sync_now().unwrap();
        without_late_arrivals(fay.cohort_dashboard().unwrap())
    };
    let (report_before, _) = report();
    let (dashboard_before, _) = dashboard();
    let ada_id = ada.my_user_id().unwrap();
    let ada_figures = report_before.members.iter().find(|m| m.user_id == ada_id).unwrap();
    assert_eq!((ada_figures.active_days_7, ada_figures.streak), (5, 5), "her offline days count");
    assert_eq!(ada_figures.feedback_given, 1);

    // 1. A facilitator "corrects" Ada's practice away; and a correction of nothing.
    let at = now - Duration::hours(1);
    let answer = rogue.upload(
        &server,
        vec![log(at, day, Some(ada_logs[0].to_string())), log(at, day, Some(uuid::Uuid::now_v7().to_string()))],
    );
    assert_eq!(reasons(&answer), ["correction_not_allowed", "correction_not_allowed"]);
    assert!(answer.practice_logs_acked.is_empty());

    // 2. Mallory back-dates a fortnight of practice beyond the window, and sends practice whose
    //    day does not match its start, practice from the future and from before the program.
    let backdated: Vec<WireLog> = (15..29u64)
        .map(|back| {
            let old = day - Days::new(back);
            log(old.and_hms_opt(9, 0, 0).unwrap().and_utc(), old, None)
        })
        .collect();
    let answer = mallory.upload(&server, backdated.clone());
    assert!(answer.practice_logs_refused.is_empty(), "{:?}", answer.practice_logs_refused);
    assert_eq!(answer.practice_logs_acked.len(), backdated.len(), "kept, as late arrivals");
    let future = day + Days::new(3);
    let before = NaiveDate::parse_from_str(&start, "%Y-%m-%d").unwrap() - Days::new(2);
    let answer = mallory.upload(
        &server,
        vec![
            log(at, day - Days::new(3), None),
            log(future.and_hms_opt(9, 0, 0).unwrap().and_utc(), future, None),
            log(before.and_hms_opt(9, 0, 0).unwrap().and_utc(), before, None),
        ],
    );
    assert_eq!(reasons(&answer), ["date_mismatch", "in_the_future", "before_program"]);

    // 3. Feedback on a submission that does not exist (credited to Ada by its key) and on her own.
    let (forger, heads) = fetch(&mallory, &doc);
    let fields = |submission: String| {
        vec![
            ("submission", automerge::ScalarValue::from(submission)),
            ("body", "Great work".into()),
            ("suggestion", "".into()),
            ("criteria", "[0, 1]".into()),
            ("created_at", automerge::ScalarValue::Int(now.timestamp_millis())),
            ("retracted", false.into()),
        ]
    };
    let mut forger = forger;
    let ghost = entry(&forger, "feedback", format!("{}/ghost", mallory.user), fields(format!("{ada_id}/no-such-work")));
    assert_eq!(push(&mallory, &doc, heads, ghost.clone()), DocStatus::Ok, "kept in the document, counted nowhere");
    forger.keep(&ghost);
    let heads = forger.heads().iter().map(|h| ByteBuf::from(h.0.to_vec())).collect();
    let mine = entry(&forger, "feedback", format!("{}/self", mallory.user), fields(own_key.clone()));
    assert_eq!(push(&mallory, &doc, heads, mine), DocStatus::Ok);

    // 4. Lateness is the server's fact: feedback it stores now in a week whose window closed is
    //    late whatever `created_at` its author wrote; Ada's reply not sent yet is pending, and
    //    on time once the server has it (this week's window is open).
    let past = DocId::week("c1", week - 2);
    let (forger, heads) = fetch(&mallory, &past);
    let mut backdated_fields = fields(format!("{ada_id}/old-work"));
    backdated_fields[4].1 = automerge::ScalarValue::Int((now - Duration::days(20)).timestamp_millis());
    let late_key = format!("{}/late", mallory.user);
    let late = entry(&forger, "feedback", late_key.clone(), backdated_fields);
    assert_eq!(push(&mallory, &past, heads, late), DocStatus::Ok);
    ada.sync_now().unwrap();
    let pending = ada.reply(&ben_feedback, None, "Thank you").unwrap();
    assert!(ada.entry_lateness(week).unwrap().contains(&(pending.key.clone(), Lateness::Pending)));
    ada.sync_now().unwrap();
    assert!(ada.entry_lateness(week).unwrap().contains(&(pending.key.clone(), Lateness::OnTime)));
    fay.sync_now().unwrap();
    assert_eq!(fay.late_entries(week - 2).unwrap(), vec![late_key], "the facilitator's device shows it late");
    assert!(fay.late_entries(week).unwrap().is_empty(), "nothing this week is late");

    // Every figure of the report and of the facilitator's dashboard is as it was; the late
    // arrivals are shown, and counted nowhere else.
    let (report_after, late) = report();
    assert_eq!(report_after, report_before);
    let (dashboard_after, late_on_dashboard) = dashboard();
    assert_eq!(dashboard_after, dashboard_before);
    let mallory_late = |late: &[(String, u32)]| late.iter().find(|(id, _)| *id == mallory.user).map(|(_, n)| *n);
    assert_eq!(mallory_late(&late), Some(backdated.len() as u32));
    assert_eq!(mallory_late(&late_on_dashboard), Some(backdated.len() as u32));
    assert_eq!(
        (&report_before.members, &report_before.feedback, &report_before.engagement),
        (&dashboard_before.members, &dashboard_before.feedback, &dashboard_before.engagement),
        "the server and the facilitator's device agree"
    );
}
