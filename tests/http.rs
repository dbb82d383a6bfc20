//! The HTTP house: health, readiness, metrics, request ids, security headers, limits and graceful
//! shutdown, in-process and on a real port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use common::{Proxy, TestApp, json_body, spawn_app};
use yihao::web::AppState;

#[tokio::test]
async fn healthz_answers_without_touching_backends() {
    let app = TestApp::new().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["status"], "ok");
}

#[tokio::test]
async fn readyz_reports_each_backend_on_embedded_defaults() {
    let app = TestApp::new().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = json_body(response).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"]["backend"], "sqlite");
    assert_eq!(body["checks"]["cache"]["backend"], "memory");
    assert_eq!(body["down"], serde_json::json!([]));
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::new().await;
    let given = Request::get("/healthz")
        .header("x-request-id", "gw-7f3a")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.request(given).await.headers()["x-request-id"],
        "gw-7f3a"
    );
    let generated = app.get("/healthz").await.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        uuid::Uuid::parse_str(&generated).unwrap().get_version_num(),
        4
    );
    let hostile = Request::get("/healthz")
        .header("x-request-id", "a b\tc")
        .body(Body::empty())
        .unwrap();
    let replaced = app.request(hostile).await.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        uuid::Uuid::parse_str(&replaced).is_ok(),
        "an id with spaces was kept: {replaced}"
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::new().await;
    for path in ["/healthz", "/readyz", "/metrics", "/no/such/path"] {
        let response = app.get(path).await;
        let h = response.headers();
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert!(
            !h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("unsafe-inline"),
            "{path}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        // RFC 6797 §7.2: never over plain HTTP (tests/cli.rs checks it over TLS).
        assert!(h.get("strict-transport-security").is_none(), "{path}");
    }
}

#[tokio::test]
async fn unknown_paths_get_a_json_404() {
    let app = TestApp::new().await;
    let response = app.get("/nope").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_body(response).await["error"], "not_found");
}

/// Security review 20: /metrics answered anyone. With `server.metrics_token` set it answers only
/// that bearer token.
#[tokio::test]
async fn metrics_can_be_kept_behind_a_token() {
    let app = TestApp::builder()
        .configure(|c| c.server.metrics_token = yihao::config::Secret::new("m-3tr1cs-t0ken"))
        .build()
        .await;
    let anonymous = app.get("/metrics").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = app
        .request(
            Request::get("/metrics")
                .header("authorization", "Bearer nope")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = app
        .request(
            Request::get("/metrics")
                .header("authorization", "Bearer m-3tr1cs-t0ken")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(right.status(), StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_and_status() {
    let app = TestApp::new().await;
    app.get("/healthz").await;
    app.get("/healthz").await;
    app.get("/secret/path/with-an-id-123").await;
    // Made-up methods share one label (security review 13).
    for made_up in ["FOOBAR", "BAZQUX"] {
        app.request(
            Request::builder()
                .method(made_up)
                .uri("/healthz")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    }
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = String::from_utf8(
        axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains("# TYPE yihao_http_requests counter"),
        "{text}"
    );
    assert!(
        text.contains(r#"yihao_http_requests_total{method="GET",route="/healthz",status="200"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(
        !text.contains("with-an-id-123"),
        "raw paths leak into labels"
    );
    assert!(
        !text.contains("FOOBAR") && !text.contains("BAZQUX"),
        "{text}"
    );
    assert!(text.contains(r#"method="other""#), "{text}");
    assert!(
        text.contains("yihao_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            r#"yihao_build_info{{version="{}"}} 1"#,
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
}

/// `/slow`: says it has started (to `started`), then takes half a second, as a slow handler would.
fn slow_routes(started: Arc<tokio::sync::Notify>) -> Router<AppState> {
    Router::new().route(
        "/slow",
        get(move || async move {
            started.notify_one();
            // A slow handler: still running when the shutdown starts.
            tokio::time::sleep(Duration::from_millis(500)).await;
            "done"
        }),
    )
}

#[tokio::test]
async fn a_request_slower_than_the_limit_gets_408() {
    let app = TestApp::builder()
        .configure(|c| c.server.request_timeout_secs = 1)
        .routes(Router::new().route(
            "/slower",
            get(|| async {
                // Slower than the 1-second request limit under test.
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        ))
        .build()
        .await;
    assert_eq!(
        app.get("/slower").await.status(),
        StatusCode::REQUEST_TIMEOUT
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413() {
    let app = TestApp::builder()
        .routes(Router::new().route(
            "/echo",
            axum::routing::post(|body: String| async move { body }),
        ))
        .build()
        .await;
    let form = "application/x-www-form-urlencoded";
    let small = Request::post("/echo")
        .header("content-type", form)
        .body(Body::from("hello"))
        .unwrap();
    assert_eq!(app.request(small).await.status(), StatusCode::OK);
    let limit = app.app.config.server.body_limit_bytes;
    // Declared too large: refused before reading. Not declared (streamed): refused while reading.
    let declared = Request::post("/echo")
        .header("content-type", form)
        .body(Body::from(vec![b'x'; limit + 1]))
        .unwrap();
    assert_eq!(
        app.request(declared).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let chunks = futures::stream::iter(
        (0..=limit / 1024).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 1024])),
    );
    let streamed = Request::post("/echo")
        .header("content-type", form)
        .body(Body::from_stream(chunks))
        .unwrap();
    let response = app.request(streamed).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        json_body(response).await["error_description"]
            .as_str()
            .unwrap()
            .contains(&limit.to_string())
    );
}

/// Only UTF-8 parameters, bounded in length and number, in form bodies of the form type: checked
/// before any handler, on every route (RFC 6749 §3.1, §3.2, Appendix B).
#[tokio::test]
async fn parameters_must_be_utf8_bounded_and_in_a_form_body() {
    let app = TestApp::new().await;
    let limits = &app.app.config.server;
    let (bytes, count) = (limits.param_limit_bytes, limits.param_limit_count);
    let refused = |status: StatusCode, description: &'static str| {
        move |response: axum::response::Response| async move {
            assert_eq!(response.status(), status, "{description}");
            let body = json_body(response).await;
            assert_eq!(body["error"], "invalid_request");
            assert!(
                body["error_description"]
                    .as_str()
                    .unwrap()
                    .contains(description),
                "{body}"
            );
        }
    };
    // A query string that is not UTF-8, percent-encoded or raw, would otherwise read as U+FFFD.
    refused(StatusCode::BAD_REQUEST, "the parameter state is not UTF-8")(
        app.get("/authorize?client_id=a&state=%FF").await,
    )
    .await;
    refused(StatusCode::BAD_REQUEST, "the parameter state is not UTF-8")(
        app.get("/authorize?client_id=a&state=%C0%AF").await,
    )
    .await;
    // Too long (counted after decoding) and too many.
    let long = format!("/authorize?login_hint={}", "%41".repeat(bytes + 1));
    refused(
        StatusCode::BAD_REQUEST,
        "the parameter login_hint is longer than",
    )(app.get(&long).await)
    .await;
    let just = format!("/authorize?login_hint={}", "%41".repeat(bytes));
    let answered = app.get(&just).await;
    assert!(
        answered.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "at the limit, the authorize handler itself answers"
    );
    let many: Vec<String> = (0..=count).map(|i| format!("p{i}=1")).collect();
    refused(StatusCode::BAD_REQUEST, "more than")(
        app.get(&format!("/authorize?{}", many.join("&"))).await,
    )
    .await;
    let post = |content_type: &'static str, body: Vec<u8>| {
        Request::post("/token")
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let form = "application/x-www-form-urlencoded";
    refused(
        StatusCode::BAD_REQUEST,
        "the parameter client_id is not UTF-8",
    )(
        app.request(post(
            form,
            b"grant_type=client_credentials&client_id=\xe4\xbd".to_vec(),
        ))
        .await,
    )
    .await;
    refused(StatusCode::UNSUPPORTED_MEDIA_TYPE, "only UTF-8")(
        app.request(post(
            "application/x-www-form-urlencoded; charset=ISO-8859-1",
            b"grant_type=client_credentials".to_vec(),
        ))
        .await,
    )
    .await;
    refused(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "application/x-www-form-urlencoded",
    )(
        app.request(post(
            "application/json",
            br#"{"grant_type":"client_credentials"}"#.to_vec(),
        ))
        .await,
    )
    .await;
    // Well-formed, with a UTF-8 charset named: the token endpoint itself answers.
    let response = app
        .request(post(
            "application/x-www-form-urlencoded; charset=UTF-8",
            b"grant_type=client_credentials&client_id=nobody".to_vec(),
        ))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(response).await["error"], "invalid_client");
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish_then_stops_serving() {
    let started = Arc::new(tokio::sync::Notify::new());
    let app = TestApp::builder()
        .routes(slow_routes(started.clone()))
        .build()
        .await;
    let mut server = spawn_app(app).await;
    let url = format!("{}/slow", server.base);
    let in_flight = tokio::spawn(async move { reqwest::get(url).await });
    // Shut down once the request is in the handler.
    started.notified().await;
    server.shutdown();
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was cut off");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
    let finished = tokio::time::timeout(Duration::from_secs(5), &mut server.task).await;
    finished.expect("server did not stop").unwrap().unwrap();
    assert!(
        reqwest::get(format!("{}/healthz", server.base))
            .await
            .is_err(),
        "still serving"
    );
}

/// Polls /readyz until it answers `want` or 15 s pass; returns the last body.
async fn readyz_until(app: &TestApp, want: StatusCode) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let response = app.get("/readyz").await;
        let status = response.status();
        let body = json_body(response).await;
        if status == want || tokio::time::Instant::now() > deadline {
            assert_eq!(status, want, "{body}");
            return body;
        }
        // Real time: readiness follows a backend that another task stops and starts.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn readyz_names_the_cache_while_redis_is_away_and_recovers_without_restart() {
    let Some(mut cache) = common::redis_cache().await else {
        common::not_configured(common::REDIS_URL_VAR);
        return;
    };
    let target = url::Url::parse(&cache.url).unwrap();
    let proxy = Proxy::start(&format!(
        "{}:{}",
        target.host_str().unwrap(),
        target.port().unwrap_or(6379)
    ))
    .await;
    cache.url = format!("redis://{}{}", proxy.addr, target.path());
    let app = TestApp::builder().cache(cache).build().await;
    let up = readyz_until(&app, StatusCode::OK).await;
    assert_eq!(up["checks"]["cache"]["backend"], "redis");

    proxy.cut();
    let down = readyz_until(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(down["down"], serde_json::json!(["cache"]), "{down}");
    assert_eq!(down["checks"]["cache"]["status"], "down");
    assert!(
        down["checks"]["cache"].get("error").is_none(),
        "no backend error text in the public answer: {down}"
    );
    assert_eq!(down["checks"]["database"]["status"], "up");

    proxy.restore().await;
    readyz_until(&app, StatusCode::OK).await;
    app.app
        .ephemeral
        .put("after", b"restart", Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test]
async fn readyz_names_the_database_while_postgresql_is_away_and_recovers() {
    let Some(test_db) = common::postgres_database().await else {
        common::not_configured(common::PG_URL_VAR);
        return;
    };
    let mut database = test_db.config.clone();
    let mut url = url::Url::parse(&database.url).unwrap();
    let proxy = Proxy::start(&format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port().unwrap_or(5432)
    ))
    .await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    database.url = url.to_string();
    database.acquire_timeout_secs = 1;
    let app = TestApp::builder().database(database).build().await;
    readyz_until(&app, StatusCode::OK).await;

    proxy.cut();
    let down = readyz_until(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(down["down"], serde_json::json!(["database"]), "{down}");
    assert_eq!(down["checks"]["database"]["backend"], "postgres");

    proxy.restore().await;
    readyz_until(&app, StatusCode::OK).await;
}
