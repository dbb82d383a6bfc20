//! Clients' JWK Sets fetched over HTTP (for `private_key_jwt` clients that registered a
//! `jwks_uri`), and the process's one outbound HTTP client.

use std::time::{Duration, Instant};

use super::outbound::Destinations;
use crate::protocol::client_auth::FetchError;

/// Fetches clients' JWK Sets over HTTP with a time limit and caches them for five minutes.
pub struct HttpClientKeys {
    http: reqwest::Client,
    /// Where outbound requests may go (an address written in a URL is checked here).
    pub destinations: Destinations,
    cache:
        std::sync::Mutex<std::collections::HashMap<String, (Instant, jsonwebtoken::jwk::JwkSet)>>,
}

impl HttpClientKeys {
    const TTL: Duration = Duration::from_secs(300);
    /// A set fetched this recently is not fetched again, even for a key id it lacks (security
    /// review 7: an assertion naming an unknown `kid` made the server fetch on every request).
    const REFETCH_AFTER: Duration = Duration::from_secs(60);

    /// The underlying client, shared with other outbound work.
    pub fn client(&self) -> reqwest::Client {
        self.http.clone()
    }

    pub fn new() -> Self {
        Self::with_destinations(Destinations::default())
    }

    /// Outbound requests only to `destinations` (the one HTTP client of the process: each loads
    /// the TLS root store).
    pub fn with_destinations(destinations: Destinations) -> Self {
        Self {
            http: destinations.client(),
            destinations,
            cache: std::sync::Mutex::default(),
        }
    }
}

impl Default for HttpClientKeys {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl crate::protocol::client_auth::ClientKeys for HttpClientKeys {
    async fn fetch(&self, uri: &str, fresh: bool) -> Result<jsonwebtoken::jwk::JwkSet, FetchError> {
        {
            let cache = self
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let max_age = if fresh {
                Self::REFETCH_AFTER
            } else {
                Self::TTL
            };
            if let Some((_, set)) = cache.get(uri).filter(|(at, _)| at.elapsed() < max_age) {
                return Ok(set.clone());
            }
        }
        self.destinations
            .check_url(uri)
            .map_err(|e| FetchError::Transport(Box::new(e)))?;
        let mut response = self
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
        // Read with a cap as it arrives, never buffering more than the limit (security review 11).
        const CAP: usize = 256 * 1024;
        if response.content_length().is_some_and(|n| n > CAP as u64) {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Transport(Box::new(e.without_url())))?
        {
            if body.len() + chunk.len() > CAP {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::protocol::client_auth::ClientKeys;

    /// Security review 7: a fresh fetch (an unknown `kid`) reaches the client's server at most once
    /// a minute.
    #[tokio::test]
    async fn an_unknown_key_id_refetches_the_set_at_most_once_a_minute() {
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { axum::Json(serde_json::json!({ "keys": [] })) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let keys = HttpClientKeys::new();
        keys.fetch(&uri, false).await.unwrap();
        for _ in 0..5 {
            keys.fetch(&uri, true).await.unwrap();
        }
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    /// Security review 11: the whole answer was buffered before its size was checked. A set larger
    /// than 256 KiB is refused as it streams in, with or without a Content-Length.
    #[tokio::test]
    async fn an_oversized_set_is_refused_while_it_streams() {
        let chunked = axum::routing::get(|| async {
            let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![b' '; 8192]));
            axum::body::Body::from_stream(futures_util::stream::iter(chunks))
        });
        let sized = axum::routing::get(|| async { " ".repeat(300 * 1024) });
        let app = axum::Router::new()
            .route("/chunked", chunked)
            .route("/sized", sized);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let keys = HttpClientKeys::new();
        for path in ["/chunked", "/sized"] {
            let refused = keys.fetch(&format!("{base}{path}"), false).await;
            assert!(
                matches!(refused, Err(FetchError::TooLarge)),
                "{path}: {refused:?}"
            );
        }
    }
}
