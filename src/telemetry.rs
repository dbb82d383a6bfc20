//! Logs and metrics. Logs go to stderr (stdout belongs to the CLI's output): human-readable on a
//! terminal, JSON lines otherwise or when `log.format = "json"`. Every line logged while a request is
//! served carries that request's id (the `request` span set up in `web::middleware`).
//! Metrics are kept in a Prometheus registry and served as text by `GET /metrics`.

use std::io::IsTerminal;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. A second call (tests) keeps the first one.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::builder().parse_lossy(&config.level);
    let json = match config.format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutsideLabels {
    pub service: &'static str,
    /// `ok`, `timeout`, `unavailable`, `malformed`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: &'static str,
}

/// Calls to the services outside yihao (SMS gateway, registers): count by outcome, and latency.
#[derive(Clone)]
pub struct OutsideMetrics {
    calls: Family<OutsideLabels, Counter>,
    latency: Family<ServiceLabels, Histogram>,
}

impl Default for OutsideMetrics {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> _),
        }
    }
}

impl OutsideMetrics {
    /// Records one call (all its attempts) to `service`.
    pub fn observe(&self, service: &'static str, outcome: &'static str, elapsed: Duration) {
        self.calls
            .get_or_create(&OutsideLabels { service, outcome })
            .inc();
        self.latency
            .get_or_create(&ServiceLabels { service })
            .observe(elapsed.as_secs_f64());
    }
}

/// The server's metrics. Routes are labelled by their pattern (`/clients/{id}`), never by the raw
/// path, so label cardinality stays bounded; unknown paths share the route `unmatched`.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    /// Audit events that found the writer's queue full and waited for room.
    pub audit_queue_full: Counter,
    /// Calls to the SMS gateway and the registers.
    pub outside: OutsideMetrics,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~3.3 s in powers of two: token endpoints live at the low end, logins (argon2) higher.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.00005, 2.0, 17,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("yihao");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route",
            latency.clone(),
        );
        registry.register(
            "build",
            "Version of the running server",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let audit_queue_full = Counter::default();
        registry.register(
            "audit_queue_full",
            "Audit events that found the writer's queue full and waited",
            audit_queue_full.clone(),
        );
        let outside = OutsideMetrics::default();
        registry.register(
            "outside_calls",
            "Calls to services outside yihao (SMS gateway, registers), by service and outcome",
            outside.calls.clone(),
        );
        registry.register(
            "outside_call_duration_seconds",
            "Time a call to a service outside yihao took, retries included",
            outside.latency.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            audit_queue_full,
            outside,
        }
    }
}

/// The method as a metric label: one of the methods of RFC 9110 §9, or `other`, so a client making up
/// methods cannot create series without end (security review 13).
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The registry in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Displays an error with its sources, `: `-separated, for one log line.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}
