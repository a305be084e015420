//! The gateway's HTTP surface: driven with `oneshot` (no socket) and, for start-up failures,
//! through the real binary. The node API over a real socket is in `node_api.rs`.

use std::process::{Command, Stdio};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use gateway::{Assets, Node, NodeOptions, app};
use http_body_util::BodyExt;
use tower::ServiceExt;

const INDEX: &str = "<!DOCTYPE html><html><body>meterkast index</body></html>";

fn assets_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("index.html"), INDEX).expect("write index");
    std::fs::write(dir.path().join("style.css"), "body{}").expect("write css");
    dir
}

/// A node on a fresh store; the folder must outlive the node.
fn node() -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::open(NodeOptions::new(dir.path().join("node.sqlite"))).expect("node");
    (dir, node)
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
    let (_dir, node) = node();
    let (status, content_type, body) = get(app(&node, &Assets::None), "/api/v1/info").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let info: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(info["name"], "meterkast-gateway");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["build"], gateway::BUILD);
    assert_eq!(info["protocol_version"], protocol::VERSION);
    assert_eq!(info["difficulty"], 12);
    assert_eq!(info["durability"], "full");
    assert_eq!(info["limits"]["max_body_bytes"], protocol::tangle::MAX_ENCODED_LEN);
    assert_eq!(info["limits"]["max_payload_bytes"], protocol::tangle::MAX_PAYLOAD_LEN);
    assert_eq!(info["limits"]["rate_limit"]["per_second"], 50);
}

#[tokio::test]
async fn unknown_api_paths_answer_a_json_404_not_the_index() {
    let dir = assets_dir();
    let (_store, node) = node();
    let router = app(&node, &Assets::folder(dir.path()).expect("assets"));
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
    let (_store, node) = node();
    let router = app(&node, &Assets::folder(dir.path()).expect("assets"));
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
    let (_dir, node) = node();
    let (status, content_type, _) = get(app(&node, &Assets::None), "/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(content_type.as_deref(), Some("application/json"));
}

/// Every route the router serves is described in `openapi.json`, and every described operation
/// is served (the router's table is recorded as routes are registered, so it cannot drift).
#[tokio::test]
async fn the_openapi_description_covers_exactly_the_routes_served() {
    let spec: serde_json::Value = serde_json::from_str(gateway::api::OPENAPI_JSON).expect("json");
    assert_eq!(spec["openapi"], "3.1.0");
    let mut described = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            described.push((method.clone(), path.clone()));
        }
    }
    let mut served: Vec<(String, String)> = gateway::api::routes()
        .described()
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    described.sort();
    served.sort();
    assert_eq!(described, served);

    // And the node serves the same document.
    let (_dir, node) = node();
    let (status, content_type, body) = get(app(&node, &Assets::None), "/api/v1/openapi.json").await;
    assert_eq!((status, content_type.as_deref()), (StatusCode::OK, Some("application/json")));
    assert_eq!(body, gateway::api::OPENAPI_JSON);
}

/// Every `$ref` in the description points at something that exists.
#[test]
fn the_openapi_references_resolve() {
    fn walk(value: &serde_json::Value, root: &serde_json::Value, refs: &mut usize) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(target) = map.get("$ref").and_then(|r| r.as_str()) {
                    let pointer = target.strip_prefix('#').expect("local ref");
                    assert!(root.pointer(pointer).is_some(), "dangling {target}");
                    *refs += 1;
                }
                map.values().for_each(|v| walk(v, root, refs));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, root, refs)),
            _ => {}
        }
    }
    let spec: serde_json::Value = serde_json::from_str(gateway::api::OPENAPI_JSON).expect("json");
    let mut refs = 0;
    walk(&spec, &spec, &mut refs);
    assert!(refs > 10, "the description uses shared schemas ({refs} refs)");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let (_dir, node) = node();
    let (status, content_type, body) = get(app(&node, &Assets::None), "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.expect("type").starts_with("application/openmetrics-text"));
    assert!(body.contains("# TYPE meterkast_node_commit_seconds histogram"), "{body}");
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
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
fn refuses_to_start_on_an_unusable_store_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A store path below a regular file cannot be created.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").expect("write");
    let store = blocker.join("node.sqlite");
    let (ok, stderr) = run_gateway(&[
        "--listen",
        "127.0.0.1:0",
        "--api-only",
        "--store",
        store.to_str().expect("utf-8"),
    ]);
    assert!(!ok);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("gateway: cannot open the store at "), "{stderr}");
    assert!(stderr.contains("--store"), "{stderr}");
}

#[test]
fn refuses_to_start_without_its_asset_folder_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("dist");
    let store = dir.path().join("node.sqlite");
    let (ok, stderr) = run_gateway(&[
        "--listen",
        "127.0.0.1:0",
        "--assets",
        missing.to_str().expect("utf-8"),
        "--store",
        store.to_str().expect("utf-8"),
    ]);
    assert!(!ok);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("has no index.html"), "{stderr}");
}
