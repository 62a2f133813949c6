//! Prometheus text metrics: requests, sync latency, rejected changes by reason, stored totals.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub path: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub sync_seconds: Histogram,
    pub rejected_changes: Family<ReasonLabels, Counter>,
    pub documents: Gauge<i64, AtomicI64>,
    pub changes: Gauge<i64, AtomicI64>,
    /// xAPI statements by state: waiting for the LRS, delivered, refused by it.
    pub xapi_statements: Family<StateLabels, Gauge<i64, AtomicI64>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("microcohort");
        let requests = Family::<RequestLabels, Counter>::default();
        let sync_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        let rejected_changes = Family::<ReasonLabels, Counter>::default();
        let documents = Gauge::<i64, AtomicI64>::default();
        let changes = Gauge::<i64, AtomicI64>::default();
        let xapi_statements = Family::<StateLabels, Gauge<i64, AtomicI64>>::default();
        registry.register("http_requests", "HTTP requests by path and status", requests.clone());
        registry.register("sync_duration_seconds", "Time to handle one /v1/sync request", sync_seconds.clone());
        registry.register("rejected_changes", "CRDT changes refused, by reason", rejected_changes.clone());
        registry.register("documents_stored", "Documents with at least one stored change", documents.clone());
        registry.register("changes_stored", "CRDT changes stored", changes.clone());
        registry.register(
            "xapi_statements",
            "xAPI statements queued for the LRS, by state (pending, delivered, refused)",
            xapi_statements.clone(),
        );
        Self { registry, requests, sync_seconds, rejected_changes, documents, changes, xapi_statements }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
