//! Clients' JWK Sets fetched over HTTP (for `private_key_jwt` clients that registered a
//! `jwks_uri`), and the process's one outbound HTTP client.

use std::time::{Duration, Instant};

use crate::protocol::client_auth::FetchError;

/// Fetches clients' JWK Sets over HTTP with a time limit and caches them for five minutes.
pub struct HttpClientKeys {
    http: reqwest::Client,
    cache:
        std::sync::Mutex<std::collections::HashMap<String, (Instant, jsonwebtoken::jwk::JwkSet)>>,
}

impl HttpClientKeys {
    const TTL: Duration = Duration::from_secs(300);

    /// The underlying client, shared with other outbound work.
    pub fn client(&self) -> reqwest::Client {
        self.http.clone()
    }

    pub fn new() -> Self {
        Self::with_client(outbound_client())
    }

    /// Uses an existing client (one per process: each loads the TLS root store).
    pub fn with_client(http: reqwest::Client) -> Self {
        Self {
            http,
            cache: std::sync::Mutex::default(),
        }
    }
}

/// The process's one HTTP client for outbound calls (client JWK Sets, logout deliveries): no
/// redirects followed, a 5-second default limit (callers may set their own per request).
pub fn outbound_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

impl Default for HttpClientKeys {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl crate::protocol::client_auth::ClientKeys for HttpClientKeys {
    async fn fetch(&self, uri: &str, fresh: bool) -> Result<jsonwebtoken::jwk::JwkSet, FetchError> {
        if !fresh {
            let cache = self
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((_, set)) = cache.get(uri).filter(|(at, _)| at.elapsed() < Self::TTL) {
                return Ok(set.clone());
            }
        }
        let response = self
            .http
            .get(uri)
            .send()
            .await
            .map_err(|e| FetchError::Transport(Box::new(e.without_url())))?;
        if !response.status().is_success() {
            return Err(FetchError::Status {
                uri: uri.to_owned(),
                status: response.status().to_string(),
            });
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| FetchError::Transport(Box::new(e.without_url())))?;
        if body.len() > 256 * 1024 {
            return Err(FetchError::TooLarge);
        }
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_slice(&body).map_err(FetchError::NotJwks)?;
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(uri.to_owned(), (Instant::now(), set.clone()));
        Ok(set)
    }
}
