//! Shared helpers for the tests that run the router in-process over loopback.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use lis_router::{Router, config};

/// A loopback port free at the time of asking, never one handed out before in this test
/// binary (the kernel may give a released port to the next caller: two tests running in
/// parallel would share it).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Starts the router on the configuration `text`, read as `dir/router.cfg`.
pub async fn start(dir: &Path, text: &str) -> Router {
    let loaded = config::load_str(text, &dir.join("router.cfg")).unwrap();
    Router::start(&loaded.config).await.unwrap()
}
