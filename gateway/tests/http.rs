//! The gateway's HTTP surface: driven with `oneshot` (no socket) and, for start-up failures,
//! through the real binary.

use std::process::{Command, Stdio};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use gateway::{Assets, app};
use http_body_util::BodyExt;
use tower::ServiceExt;

const INDEX: &str = "<!DOCTYPE html><html><body>meterkast index</body></html>";

fn assets_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("index.html"), INDEX).expect("write index");
    std::fs::write(dir.path().join("style.css"), "body{}").expect("write css");
    dir
}

async fn get(router: axum::Router, path: &str) -> (StatusCode, Option<String>, String) {
    let response = router
        .oneshot(Request::get(path).body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().expect("ascii content type").to_owned());
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, content_type, String::from_utf8(bytes.to_vec()).expect("utf-8 body"))
}

#[tokio::test]
async fn info_names_the_node_its_version_and_build() {
    let (status, content_type, body) = get(app(&Assets::None), "/api/v1/info").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let info: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(info["name"], "meterkast-gateway");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["build"], gateway::BUILD);
    assert_eq!(info["protocol_version"], protocol::VERSION);
}

#[tokio::test]
async fn unknown_api_paths_answer_a_json_404_not_the_index() {
    let dir = assets_dir();
    let router = app(&Assets::folder(dir.path()).expect("assets"));
    for path in ["/api/v1/nope", "/api/v2/info", "/api/", "/api"] {
        let (status, content_type, body) = get(router.clone(), path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(content_type.as_deref(), Some("application/json"), "{path}");
        let err: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(err["error"]["code"], "not_found", "{path}");
        assert!(!body.contains("meterkast index"), "{path} leaked the index page");
    }
}

#[tokio::test]
async fn client_side_routes_fall_back_to_the_index_with_200() {
    let dir = assets_dir();
    let router = app(&Assets::folder(dir.path()).expect("assets"));
    let (status, _, body) = get(router.clone(), "/").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, INDEX));
    let (status, _, body) = get(router.clone(), "/wallet/devices").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, INDEX));
    let (status, content_type, body) = get(router, "/style.css").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "body{}"));
    assert_eq!(content_type.as_deref(), Some("text/css"));
}

#[tokio::test]
async fn api_only_node_answers_json_404_everywhere_else() {
    let (status, content_type, _) = get(app(&Assets::None), "/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(content_type.as_deref(), Some("application/json"));
}

#[test]
fn a_folder_without_index_html_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = Assets::folder(dir.path()).expect_err("must refuse");
    assert!(err.to_string().contains("has no index.html"), "{err}");
}

/// Runs the real binary and returns (exit success, stderr).
fn run_gateway(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(args)
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .output()
        .expect("run gateway");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn refuses_to_start_on_a_taken_port_with_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (ok, stderr) = run_gateway(&["--listen", &addr, "--api-only"]);
    assert!(!ok);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("gateway: cannot listen on {addr}: ")), "{stderr}");
}

#[test]
fn refuses_to_start_without_its_asset_folder_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("dist");
    let (ok, stderr) =
        run_gateway(&["--listen", "127.0.0.1:0", "--assets", missing.to_str().expect("utf-8")]);
    assert!(!ok);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("has no index.html"), "{stderr}");
}
