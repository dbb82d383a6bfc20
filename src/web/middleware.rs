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

/// docs/design.md: no framing (`frame-ancestors 'none'`, `X-Frame-Options`), no MIME sniffing, no
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

/// RFC 6797 §6.1: `Strict-Transport-Security`, sent when the server itself serves TLS ("An HSTS
/// Host MUST NOT include the STS header field in HTTP responses conveyed over non-secure
/// transport"). `None` when TLS is not served here or the max-age is 0.
pub fn hsts(tls: &crate::config::TlsConfig) -> Option<SetResponseHeaderLayer<HeaderValue>> {
    if !tls.enabled() || tls.hsts_max_age_secs == 0 {
        return None;
    }
    let value = HeaderValue::from_str(&format!("max-age={}", tls.hsts_max_age_secs)).ok()?;
    Some(SetResponseHeaderLayer::overriding(
        header::STRICT_TRANSPORT_SECURITY,
        value,
    ))
}

/// The prefix of the JSON APIs (the app's and kiosks' calls).
pub const JSON_API: &str = "/api/";
/// The prefix of the admin API, JSON too.
pub const ADMIN_API: &str = "/admin/api/";
/// Dynamic Client Registration speaks JSON too (RFC 7591 §3: "a content type of
/// "application/json"").
const REGISTRATION: &str = crate::protocol::discovery::REGISTRATION;

/// Only UTF-8 parameters, bounded in length and number (`protocol::form`), before any handler runs:
/// the query string of every request, and the body of every request that has one. A body must be
/// `application/x-www-form-urlencoded` (RFC 6749 §3.2, §4.1.3; OIDC Core §3.1.2.1 for POSTed
/// authorization requests) with no charset but UTF-8; anything else is refused with 415. The JSON
/// APIs under [`JSON_API`] take `application/json` instead (their handlers parse it strictly). The
/// body limit layer outside this one has already bounded the body's size.
pub async fn strict_params(State(app): State<AppState>, req: Request, next: Next) -> Response {
    use super::error::refused as refuse;
    use crate::protocol::form;
    let server = &app.config.server;
    let limits = form::Limits {
        bytes: server.param_limit_bytes,
        count: server.param_limit_count,
    };
    if let Some(query) = req.uri().query()
        && let Err(e) = form::decode(query.as_bytes(), limits)
    {
        return refuse(axum::http::StatusCode::BAD_REQUEST, e.to_string());
    }
    // Known to be empty: no Content-Length or a zero one in HTTP/1.1, END_STREAM on the headers in
    // HTTP/2 (where Content-Length is optional).
    if axum::body::HttpBody::size_hint(req.body()).exact() == Some(0) {
        return next.run(req).await;
    }
    let path = req.uri().path();
    if path.starts_with(JSON_API) || path.starts_with(ADMIN_API) || path.starts_with(REGISTRATION) {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return refuse(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the request body must be application/json".into(),
            );
        }
        return next.run(req).await;
    }
    if let Err(why) = form_content_type(req.headers().get(header::CONTENT_TYPE)) {
        return refuse(axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE, why.into());
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            // The limit layer's error, under the errors of the body types wrapping it.
            let too_large = std::iter::successors(std::error::Error::source(&e), |s| s.source())
                .any(|s| s.is::<http_body_util::LengthLimitError>());
            return if too_large {
                refuse(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the request body is larger than {} bytes",
                        server.body_limit_bytes
                    ),
                )
            } else {
                refuse(
                    axum::http::StatusCode::BAD_REQUEST,
                    "the request body could not be read".into(),
                )
            };
        }
    };
    if let Err(e) = form::decode(&bytes, limits) {
        return refuse(axum::http::StatusCode::BAD_REQUEST, e.to_string());
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// `application/x-www-form-urlencoded`, with `charset=utf-8` or no charset (the media type defines
/// no charset parameter; UTF-8 is what RFC 6749 Appendix B prescribes).
fn form_content_type(value: Option<&HeaderValue>) -> Result<(), &'static str> {
    const WANTED: &str = "the request body must be application/x-www-form-urlencoded in UTF-8";
    let value = value.and_then(|v| v.to_str().ok()).ok_or(WANTED)?;
    let mut parts = value.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|t| t.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    {
        return Err(WANTED);
    }
    for parameter in parts.filter(|p| !p.is_empty()) {
        let (name, value) = parameter.split_once('=').ok_or(WANTED)?;
        if name.trim().eq_ignore_ascii_case("charset")
            && !value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        {
            return Err("only UTF-8 is accepted (charset=utf-8)");
        }
    }
    Ok(())
}
