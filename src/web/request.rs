//! Reading requests: parameters (already checked by the `strict_params` middleware: UTF-8,
//! bounded, form bodies only) and where a request came from, for the audit log.

use axum::http::{HeaderMap, Method, header};

use crate::protocol::audit::RequestContext;

/// Decoded `name=value` pairs of a query string or form body.
pub fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// The parameters of an endpoint that takes both GET and POST (OIDC Core §3.1.2.1): the form body
/// of a POST, the query of a GET.
pub fn params(method: &Method, query: Option<&str>, body: &[u8]) -> Vec<(String, String)> {
    if method == Method::POST {
        pairs(body)
    } else {
        pairs(query.unwrap_or_default().as_bytes())
    }
}

/// A form field's value, `""` when absent.
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Where the request came from, for audit records: the client address (the peer, or what a trusted
/// proxy says), the user agent (at most 256 characters), the request id.
pub fn context(headers: &HeaderMap, extensions: &axum::http::Extensions) -> RequestContext {
    RequestContext {
        ip: extensions
            .get::<super::client_ip::ClientIp>()
            .map(|c| c.0.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect()),
        request_id: extensions
            .get::<super::middleware::RequestId>()
            .map(|r| r.0.clone()),
    }
}
