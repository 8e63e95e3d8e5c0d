//! Shared helpers for the tests that run the router in-process over loopback.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use lis_router::{Router, config};

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts the router on the configuration `text`, read as `dir/router.cfg`.
pub async fn start(dir: &Path, text: &str) -> Router {
    let loaded = config::load_str(text, &dir.join("router.cfg")).unwrap();
    Router::start(&loaded.config).await.unwrap()
}
