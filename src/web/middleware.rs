//! Middleware: request ids, the request span, metrics and the access log ([`observe`]), and the
//! security headers every response carries ([`security_headers`]).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::Instrument;

use super::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of the request being served, for handlers that need it (audit records).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// An incoming `x-request-id` is kept when it is 1 to 128 visible ASCII characters, so a proxy's id
/// follows the request through; otherwise a new UUID is made. The id is echoed on the response, and
/// every log line written while serving the request carries it.
pub async fn observe(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    req.extensions_mut().insert(RequestId(id.clone()));
    if let Some(peer) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
    {
        let ip = super::client_ip::client_ip(peer, req.headers(), &app.trusted_proxies);
        req.extensions_mut().insert(super::client_ip::ClientIp(ip));
    }
    let mut response = next.run(req).instrument(span.clone()).await;
    let elapsed = start.elapsed();
    let status = response.status();
    app.metrics
        .observe(method.as_str(), &route, status.as_u16(), elapsed);
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            micros = elapsed.as_micros() as u64,
            "served"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

type Headers = SetResponseHeaderLayer<HeaderValue>;
type SecurityHeaders = Stack<Headers, Stack<Headers, Stack<Headers, Stack<Headers, Identity>>>>;

/// DESIGN.md §4: no framing (`frame-ancestors 'none'`, `X-Frame-Options`), no MIME sniffing, no
/// Referer leaking codes or tokens, a CSP without inline script. A handler that sets one of these
/// itself (a page that needs another CSP) keeps its own. HSTS is added when TLS is served directly.
pub fn security_headers() -> ServiceBuilder<SecurityHeaders> {
    let csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
               form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
}
