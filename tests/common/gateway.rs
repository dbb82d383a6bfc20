//! A local HTTP server that answers like an outside service (SMS gateway, register): correctly,
//! slowly, with a 5xx, or with something that is not the protocol. It records what it received.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// One request as the gateway received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct Shared {
    /// `ok`, `down` (503), `slow` (answers after 2 s), `malformed` (200, not JSON), `flaky` (503
    /// then ok), `reject` (400), or a register's JSON answer to return as it is.
    behaviour: String,
    received: Vec<Received>,
}

pub struct Gateway {
    base: String,
    shared: Arc<Mutex<Shared>>,
    _task: tokio::task::JoinHandle<()>,
}

async fn answer(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let behaviour = {
        let mut s = shared.lock().unwrap();
        s.received.push(Received {
            headers,
            body: body.to_vec(),
        });
        let b = s.behaviour.clone();
        if b == "flaky" {
            s.behaviour = "ok".into();
        }
        b
    };
    match behaviour.as_str() {
        "ok" => (StatusCode::OK, r#"{"result":"ok"}"#).into_response(),
        "down" | "flaky" => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        "reject" => StatusCode::BAD_REQUEST.into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            (StatusCode::OK, r#"{"result":"match"}"#).into_response()
        }
        "malformed" => (StatusCode::OK, "<html>maintenance</html>").into_response(),
        json => (StatusCode::OK, json.to_owned()).into_response(),
    }
}

impl Gateway {
    pub async fn start() -> Self {
        let shared = Arc::new(Mutex::new(Shared {
            behaviour: "ok".into(),
            received: Vec::new(),
        }));
        let router = Router::new()
            .fallback(axum::routing::post(answer))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            base,
            shared,
            _task: task,
        }
    }

    pub fn url(&self) -> String {
        format!("{}/send", self.base)
    }

    pub fn set(&self, behaviour: &str) {
        self.shared.lock().unwrap().behaviour = behaviour.to_owned();
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }
}
