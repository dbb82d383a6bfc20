//! The load tool's HTTP/1.1 client: one keep-alive connection per worker over hyper's connection
//! API (no pool, no redirects, no cookie store of its own), a tiny cookie jar and an HTML form
//! reader for the browserless login flow. Kept lean so the client's CPU leaves room for the server
//! on a small machine.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;

pub type Error = String;

/// One answered request.
pub struct Answer {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Result<serde_json::Value, Error> {
        serde_json::from_slice(&self.body).map_err(|e| format!("{}: not JSON: {e}", self.status))
    }

    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// An error naming the status and the start of the body.
    pub fn unexpected(&self, what: &str) -> Error {
        let body = String::from_utf8_lossy(&self.body);
        // A page's error message says more than its head.
        let shown = match body.find("class=\"error\"") {
            Some(i) => &body[i..],
            None => &body[..],
        };
        let shown: String = shown.chars().take(300).collect();
        format!("{what}: {} {shown}", self.status)
    }
}

/// A keep-alive HTTP/1.1 connection that reconnects when the server closes it.
pub struct Conn {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            host: addr.to_string(),
            sender: None,
        }
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, Error> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", self.addr))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| "no connection".to_owned())
    }

    /// Sends one request: `target` is a path with its query, `headers` extra headers.
    pub async fn send(
        &mut self,
        method: Method,
        target: &str,
        headers: &[(header::HeaderName, &str)],
        body: Option<&str>,
    ) -> Result<Answer, Error> {
        let host = self.host.clone();
        let build = || {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(target)
                .header(header::HOST, &host);
            for (name, value) in headers {
                request = request.header(name, *value);
            }
            if body.is_some() {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            }
            let payload = Full::new(Bytes::from(body.unwrap_or_default().to_owned()));
            request.body(payload).map_err(|e| e.to_string())
        };
        // A keep-alive connection the server closed between requests is retried once on a new one.
        for attempt in 0..2 {
            let request = build()?;
            let sender = self.connect().await?;
            sender.ready().await.map_err(|e| e.to_string())?;
            match sender.send_request(request).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map_err(|e| format!("body: {e}"))?
                        .to_bytes();
                    return Ok(Answer {
                        status: parts.status,
                        headers: parts.headers,
                        body,
                    });
                }
                Err(e)
                    if attempt == 0
                        && (e.is_canceled() || e.is_closed() || e.is_incomplete_message()) =>
                {
                    self.sender = None;
                }
                Err(e) => return Err(format!("{method} {target}: {e}")),
            }
        }
        Err(format!("{method} {target}: connection closed twice"))
    }
}

/// The cookies one browser holds for the provider (one host, so names are enough).
#[derive(Default, Clone)]
pub struct Jar {
    cookies: BTreeMap<String, String>,
}

impl Jar {
    pub fn take(&mut self, answer: &Answer) {
        for value in answer.headers.get_all(header::SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let mut parts = value.split(';');
            let Some((name, val)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
                continue;
            };
            let expired = parts.any(|p| {
                let p = p.trim().to_ascii_lowercase();
                p == "max-age=0" || p.starts_with("expires=thu, 01 jan 1970")
            });
            if expired || val.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), val.to_owned());
            }
        }
    }

    pub fn header(&self) -> String {
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        pairs.join("; ")
    }
}

/// The first `<form>` of a page: where it posts and what it sends. Hidden inputs are sent as they
/// are; a text input gets `identifier` and a password input `password`; the first named submit button
/// (allow, on a consent page) is pressed.
pub fn form(page: &str, identifier: &str, password: &str) -> Option<(String, String)> {
    let start = page.find("<form")?;
    let end = page[start..]
        .find("</form>")
        .map_or(page.len(), |e| start + e);
    let form = &page[start..end];
    let action = decode_entities(&attribute(&form[..form.find('>')?], "action")?);
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut pressed = false;
    for tag in form.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or_default();
        let name = attribute(tag, "name").map(|n| decode_entities(&n));
        if tag.starts_with("input") {
            let Some(name) = name else { continue };
            let kind = attribute(tag, "type").unwrap_or_else(|| "text".into());
            let value = match kind.as_str() {
                "hidden" => decode_entities(&attribute(tag, "value").unwrap_or_default()),
                "password" => password.to_owned(),
                "text" | "email" | "tel" => identifier.to_owned(),
                _ => continue,
            };
            fields.push((name, value));
        } else if tag.starts_with("button")
            && !pressed
            && let Some(name) = name
        {
            let value = decode_entities(&attribute(tag, "value").unwrap_or_default());
            fields.push((name, value));
            pressed = true;
        }
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    Some((action, body))
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    Some(tag[start..].split('"').next()?.to_owned())
}

fn decode_entities(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#x2F;", "/")
        .replace("&#x3D;", "=")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// The path and query of `location` if it points at `base`, `None` if it leaves it.
pub fn local_target(base: &str, location: &str) -> Option<String> {
    if location.starts_with('/') {
        return Some(location.to_owned());
    }
    location.strip_prefix(base).map(|rest| {
        if rest.is_empty() {
            "/".into()
        } else {
            rest.into()
        }
    })
}

/// One query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `Basic` credentials (RFC 6749 §2.3.1: both parts form-encoded first).
pub fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}
