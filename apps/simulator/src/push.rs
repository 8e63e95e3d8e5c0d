//! Transports that send what the simulator generates: ASTM over TCP (a full E1381 sender), HL7
//! over MLLP, and HTTP(S) POSTs as the reference does.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use astm_frame::Link;
use lis_templates::TextEncoding;
use mllp_hl7::{MllpClient, MllpCodec, Reply};
use tokio::net::{TcpSocket, TcpStream};

use crate::app::App;
use crate::faults::Faults;
use crate::link_io::{LinkIo, LinkIoError, LinkIoOptions};

/// The pause a `--push-continuous` run keeps after failed messages, whatever its
/// `--push-interval`: a LIS that is down is retried a few times a second at first, then every
/// few seconds, instead of in a tight loop that fills the terminal. A `-C` host query keeps it
/// between failed rounds.
#[derive(Default)]
pub(crate) struct FailurePause(Duration);

impl FailurePause {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    pub(crate) fn current(&self) -> Duration {
        self.0
    }

    pub(crate) fn grow(&mut self) {
        self.0 = (self.0 * 2).clamp(Self::FIRST, Self::MAX);
    }

    pub(crate) fn reset(&mut self) {
        self.0 = Duration::ZERO;
    }
}

/// Where a push goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// `tcp://host:port`: ASTM E1381 over TCP.
    Tcp(String),
    /// `mllp://host:port`: HL7 over MLLP.
    Mllp(String),
    /// An http(s) base URL.
    Http(String),
}

/// Why `url` cannot be an http(s) URL to send to, if it cannot: it does not parse, has another
/// scheme, or names no host.
pub(crate) fn http_url_problem(url: &str) -> Option<String> {
    match reqwest::Url::parse(url) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => Some(format!(
            "scheme {}:// is not http:// or https://",
            u.scheme()
        )),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("no host".to_owned()),
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

/// The origin (`scheme://host[:port]`, the port only when not the scheme's default) of an
/// http(s) URL: what credentials are bound to, as browsers and curl bind them.
pub(crate) fn http_origin(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.origin().ascii_serialization())
}

impl Destination {
    /// Parses a `--push` value or an API `destination`. A value that cannot name a peer is
    /// refused here, saying what is wrong with it, rather than failing every message of a
    /// `--push-continuous` run (an HTTP URL was only checked when the first request was built).
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        let host_port = |rest: &str, scheme: &str| -> anyhow::Result<String> {
            let rest = rest.trim_end_matches('/');
            // The reference's wording when there is no port at all.
            let Some((host, port)) = rest.rsplit_once(':').filter(|(_, p)| !p.is_empty()) else {
                bail!("invalid {scheme} destination (missing port): {text}")
            };
            if host.is_empty() {
                bail!("invalid {scheme} destination (missing host before :{port}): {text}");
            }
            match port.parse::<u16>() {
                Ok(p) if p > 0 => Ok(rest.to_owned()),
                _ => bail!(
                    "invalid {scheme} destination (port {port:?} is not a number from 1 to 65535): {text}"
                ),
            }
        };
        let http = |url: String| -> anyhow::Result<Self> {
            match http_url_problem(&url) {
                None => Ok(Self::Http(url)),
                Some(reason) => bail!("invalid HTTP destination ({reason}): {text}"),
            }
        };
        if let Some(rest) = text.strip_prefix("tcp://") {
            Ok(Self::Tcp(host_port(rest, "TCP")?))
        } else if let Some(rest) = text.strip_prefix("mllp://") {
            Ok(Self::Mllp(host_port(rest, "MLLP")?))
        } else if text.starts_with("http://") || text.starts_with("https://") {
            http(text.trim_end_matches('/').to_owned())
        } else if text.contains("://") {
            bail!("unsupported destination {text:?}: use tcp://, mllp://, http:// or https://")
        } else {
            // The reference treats a bare value as an HTTP base; it prepends https://.
            http(format!("https://{}", text.trim_end_matches('/')))
        }
    }
}

/// How long a push waits for its source IP to appear on this host, and how often it looks, as
/// the reference does: the harness attaches the analyzer's network to the container moments
/// before the first push, and the address is not bindable until that has finished.
const SOURCE_IP_WAIT: Duration = Duration::from_secs(12);
const SOURCE_IP_POLL: Duration = Duration::from_millis(250);

/// Waits until `ip` can be bound on this host, for at most `wait`. Only "address not
/// available" is waited out; any other bind error is returned at once.
async fn wait_for_source_ip(ip: IpAddr, wait: Duration, poll: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let probe = if ip.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        match probe.bind(SocketAddr::new(ip, 0)) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                if tokio::time::Instant::now() >= deadline {
                    bail!(
                        "source IP {ip} not configured on this host after {:.1}s ({e}); give \
                         the simulator an interface with that address",
                        wait.as_secs_f64()
                    );
                }
                tokio::time::sleep(poll).await;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot bind source IP {ip}")),
        }
    }
}

/// Opens a TCP connection, bound to `source` if given. The destination is resolved first, so a
/// name that does not resolve fails at once; then the source address gets up to 12 s to appear.
pub(crate) async fn connect(
    host_port: &str,
    source: Option<IpAddr>,
    timeout: Duration,
) -> anyhow::Result<TcpStream> {
    let timed_out = || anyhow!("timeout connecting to {host_port}");
    let addrs: Vec<SocketAddr> = tokio::time::timeout(timeout, tokio::net::lookup_host(host_port))
        .await
        .map_err(|_| timed_out())?
        .with_context(|| format!("cannot resolve {host_port}"))?
        .collect();
    if let Some(ip) = source {
        wait_for_source_ip(ip, SOURCE_IP_WAIT, SOURCE_IP_POLL).await?;
    }
    let attempt = async {
        let mut last = anyhow!("no address for {host_port}");
        for addr in addrs {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            if let Some(ip) = source {
                socket
                    .bind(SocketAddr::new(ip, 0))
                    .with_context(|| format!("cannot bind source IP {ip}"))?;
            }
            match socket.connect(addr).await {
                Ok(stream) => match mllp_hl7::refuse_self_connect(stream) {
                    Ok(stream) => {
                        stream.set_nodelay(true)?;
                        return Ok(stream);
                    }
                    Err(e) => last = anyhow!("cannot push to {host_port}: {e}"),
                },
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    last = anyhow!("connection refused by {host_port}");
                }
                Err(e) => last = anyhow!("cannot connect to {host_port}: {e}"),
            }
        }
        Err(last)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| timed_out())?
}

/// The I/O loop options of a sending instrument (pushes, serial).
pub(crate) fn sender_options(faults: Arc<Faults>, label: String) -> LinkIoOptions {
    LinkIoOptions {
        control_delay: Duration::ZERO,
        nak_limit: false,
        idle: None,
        faults,
        label,
    }
}

/// An open E1381 push connection, kept between messages with `--keep-connection`.
pub(crate) type AstmConnection = Option<LinkIo<TcpStream>>;

/// Sends ASTM messages (each CR-separated records) as E1381 sessions: one connection per
/// session, or all on one connection with `keep_connection`; closes what it opened.
pub(crate) async fn astm_tcp(
    app: &App,
    host_port: &str,
    source: Option<IpAddr>,
    messages: &[Vec<u8>],
    keep_connection: bool,
    connect_timeout: Duration,
) -> anyhow::Result<()> {
    let mut connection = None;
    let result = astm_tcp_on(
        app,
        &mut connection,
        host_port,
        source,
        messages,
        keep_connection,
        connect_timeout,
    )
    .await;
    if let Some(mut io) = connection {
        io.shutdown().await;
    }
    result
}

/// As [`astm_tcp`], on `connection` (opened when empty); with `keep_connection` it stays open
/// for the next call.
pub(crate) async fn astm_tcp_on(
    app: &App,
    connection: &mut AstmConnection,
    host_port: &str,
    source: Option<IpAddr>,
    messages: &[Vec<u8>],
    keep_connection: bool,
    connect_timeout: Duration,
) -> anyhow::Result<()> {
    let total = messages.len();
    for (i, message) in messages.iter().enumerate() {
        // A kept connection the LIS has closed since (the OpenELIS bridge closes after EOT, a
        // LIS may time it out) is opened afresh; the session on it failed and the message was
        // not resent. Bytes waiting on it are the LIS's (its own ENQ): the link answers them.
        if connection
            .as_ref()
            .is_some_and(|io| peer_closed(io.get_ref()))
        {
            *connection = None;
        }
        if connection.is_none() {
            let stream = connect(host_port, source, connect_timeout).await?;
            let label = format!("push to {host_port}");
            *connection = Some(LinkIo::new(
                stream,
                Link::new(app.push_link_config()),
                sender_options(app.faults.for_push(), label),
            ));
        }
        let Some(io) = connection.as_mut() else {
            continue;
        };
        let sent = io.send(message.clone()).await;
        let local_port = io.get_ref().local_addr().map_or(0, |a| a.port());
        keep_received(app, io, local_port, host_port);
        if let Err(e) = sent {
            // A failed session leaves the link in an unknown state: start afresh next time.
            *connection = None;
            bail!(
                "ASTM session S{}/{total} not accepted by {host_port}: {e}",
                i + 1
            );
        }
        if !keep_connection && let Some(mut io) = connection.take() {
            io.shutdown().await;
        }
    }
    Ok(())
}

/// Waits `pause` with `io`'s link running, so the LIS's ENQ is answered and what it sends is
/// kept (`GET /received`, see [`keep_received`]) as during a session. Without this, a LIS that
/// opened the line during a pause (`-i`, between rounds) saw its ENQ go unanswered until its
/// reply timer gave up. `port` and `peer` are as for [`keep_received`]. Returns before the end
/// of `pause` if the connection closes or fails.
pub(crate) async fn serve_during<T>(
    app: &App,
    io: &mut LinkIo<T>,
    port: u16,
    peer: &str,
    pause: Duration,
) -> Result<(), LinkIoError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let served = io.serve_until(tokio::time::Instant::now() + pause).await;
    keep_received(app, io, port, peer);
    served
}

/// Waits `pause` as [`serve_during`] on a kept connection, if there is one; one that the LIS
/// closes or that fails meanwhile is dropped, and the next message opens a new one.
pub(crate) async fn pause_on_kept(
    app: &App,
    connection: &mut AstmConnection,
    host_port: &str,
    pause: Duration,
) {
    let end = tokio::time::Instant::now() + pause;
    if let Some(io) = connection.as_mut() {
        let port = io.get_ref().local_addr().map_or(0, |a| a.port());
        if let Err(e) = serve_during(app, io, port, host_port, pause).await {
            if !matches!(e, LinkIoError::Closed) {
                tracing::info!("{host_port}: {e}; the next message opens a new connection");
            }
            *connection = None;
        }
    }
    tokio::time::sleep_until(end).await;
}

/// Keeps what the LIS sent on a sending connection (after interrupting the simulator's
/// transfer, or between sessions on a kept connection) in `GET /received`, with a log line.
pub(crate) fn keep_received<T>(app: &App, io: &mut LinkIo<T>, port: u16, peer: &str)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for text in io.take_received() {
        tracing::info!("{peer}: {} bytes received from the LIS", text.len());
        app.received.push(port, peer.to_owned(), "ASTM", &text);
    }
}

/// An open MLLP push connection, kept between messages with `--keep-connection`.
pub(crate) type MllpConnection = Option<MllpClient<TcpStream>>;

/// Sends one HL7 message over MLLP and waits for an accepting ACK (AA or CA), unless its
/// MSH-15 asks for none.
pub(crate) async fn mllp(
    host_port: &str,
    source: Option<IpAddr>,
    message: &[u8],
    timeout: Duration,
) -> anyhow::Result<()> {
    mllp_on(&mut None, host_port, source, message, false, timeout).await
}

/// As [`mllp`], on `connection` (opened when empty); with `keep_connection` it stays open
/// for the next call, unless this one failed (the stream may hold a late reply).
pub(crate) async fn mllp_on(
    connection: &mut MllpConnection,
    host_port: &str,
    source: Option<IpAddr>,
    message: &[u8],
    keep_connection: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    // A kept connection the LIS has closed since (an idle timeout, a restart), or on which
    // it sent something unasked (the next reply would be ambiguous), is opened afresh.
    if connection
        .as_ref()
        .is_some_and(|client| !open_and_quiet(client.get_ref()))
    {
        *connection = None;
    }
    let client = match connection {
        Some(client) => client,
        None => {
            let stream = connect(host_port, source, timeout).await?;
            connection.insert(MllpClient::new(stream, MllpCodec::new()).with_ack_timeout(timeout))
        }
    };
    let result = mllp_reply(host_port, client.send(message).await);
    if result.is_err() || !keep_connection {
        *connection = None;
    }
    result
}

/// Whether the peer has closed `stream` (or it failed), without waiting or consuming input.
pub(crate) fn peer_closed(stream: &TcpStream) -> bool {
    use futures_util::FutureExt;
    let mut byte = [0u8; 1];
    matches!(stream.peek(&mut byte).now_or_never(), Some(Ok(0) | Err(_)))
}

/// Whether the peer has neither closed nor reset `stream`, nor sent anything on it since
/// its last reply: a read would have to wait.
fn open_and_quiet(stream: &TcpStream) -> bool {
    use futures_util::FutureExt;
    let mut byte = [0u8; 1];
    stream.peek(&mut byte).now_or_never().is_none()
}

/// Success for an accepting ACK (or none asked for), else what went wrong.
fn mllp_reply(host_port: &str, reply: Result<Reply, mllp_hl7::ClientError>) -> anyhow::Result<()> {
    match reply {
        Ok(Reply::Ack { code, .. }) if code.is_success() => Ok(()),
        Ok(Reply::Ack { code, .. }) => {
            bail!("negative ACK from {host_port}: MSA-1 {}", code.as_str())
        }
        Ok(other) => bail!("unexpected reply from {host_port}: {other:?}"),
        Err(e) => bail!("no ACK from {host_port}: {e}"),
    }
}

/// The HTTP client for pushes: TLS verified unless `--insecure`, `--ca-cert` trusted.
pub(crate) fn http_client(app: &App) -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a default crypto provider (no aws-lc build); use ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Redirects are not followed: an OpenELIS that wants a login answers the POST with a
    // redirect to its login page, whose 200 would count the message as delivered.
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = &app.cli.ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("--ca-cert {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("--ca-cert {}: not a PEM certificate", path.display()))?;
        if certs.is_empty() {
            bail!("--ca-cert {}: no certificate found", path.display());
        }
        builder = builder.tls_certs_only(certs);
    }
    if app.cli.insecure {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    if let Some(ip) = app.cli.source_ip {
        builder = builder.local_address(ip);
    }
    builder.build().context("building the HTTP client")
}

/// The URL an HTTP push goes to: `{base}/api/OpenELIS-Global/analyzer/astm` or `/hl7` (a base
/// that already ends in `/hl7` or contains `/analyzer/` is kept for HL7, as the reference does).
pub(crate) fn http_url(base: &str, hl7: bool) -> String {
    let base = base.trim_end_matches('/');
    if hl7 && (base.ends_with("/hl7") || base.contains("/analyzer/")) {
        base.to_owned()
    } else if hl7 {
        format!("{base}/api/OpenELIS-Global/analyzer/hl7")
    } else {
        format!("{base}/api/OpenELIS-Global/analyzer/astm")
    }
}

/// The body of an HTTP push of `payload` (a message as sent on a socket): HL7 as it is, with
/// CR-separated segments, ASTM as LF-separated records, as the reference sends them. The bytes
/// stay in the message's encoding.
pub(crate) fn http_body(payload: &[u8], hl7: bool) -> Vec<u8> {
    if hl7 {
        payload.to_vec()
    } else {
        payload
            .iter()
            .map(|&b| if b == b'\r' { b'\n' } else { b })
            .collect()
    }
}

/// POSTs `body` as `text/plain` in `encoding` (`charset=utf-8` by default), with Basic auth
/// when configured.
pub(crate) async fn http(
    app: &App,
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    encoding: TextEncoding,
) -> anyhow::Result<()> {
    let content_type = format!("text/plain; charset={}", encoding.mime_charset());
    let mut request = client
        .post(url)
        .header("Content-Type", content_type)
        .body(body);
    let credentials = app
        .cli
        .user
        .as_ref()
        .filter(|_| app.may_send_credentials(url));
    if let Some(user) = credentials {
        request = request.basic_auth(user, app.cli.password.as_deref());
    }
    let response = request
        .send()
        .await
        .map_err(|e| describe_http_error(url, &e, app.cli.ca_cert.is_some()))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else if matches!(status.as_u16(), 401 | 403)
        && credentials.is_none()
        && app.cli.user.is_some()
    {
        let origin = http_origin(url).unwrap_or_default();
        bail!(
            "HTTP push to {url} failed: status {status}; --user was not sent: {origin} is not \
             --push's origin nor an --auth-origin (add --auth-origin {origin} to send it there)"
        )
    } else if status.is_redirection() {
        let to = response
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned())
            .unwrap_or_default();
        bail!(
            "HTTP push to {url} failed: status {status}, a redirect to {to:?} (not followed: \
             the message was not taken; a login page? check --user/--password and the URL)"
        )
    } else {
        bail!("HTTP push to {url} failed: status {status}")
    }
}

/// An HTTP error with its causes (reqwest's own message names none of them), and for TLS
/// failures what to do about them.
pub(crate) fn explain_http_error(error: &reqwest::Error, ca_cert_given: bool) -> String {
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let lower = chain.to_ascii_lowercase();
    if lower.contains("causedasendentity") {
        // `openssl req -x509` marks its certificate CA:TRUE; webpki will not accept a CA
        // certificate as the server's own, trusted or not.
        format!(
            "the server presents a CA certificate (CA:TRUE) as its own ({chain}). To fix: give \
             the server a certificate with CA:FALSE (for openssl req -x509: \
             -addext basicConstraints=critical,CA:FALSE), or --insecure to skip verification \
             (testing only)"
        )
    } else if lower.contains("certificate")
        || lower.contains("unknownissuer")
        || lower.contains("tls")
    {
        let fix = if ca_cert_given {
            "the --ca-cert file must hold the server's certificate or the CA that signed it \
             (PEM), for the name in the URL; or --insecure to skip verification (testing only)"
        } else {
            "pass --ca-cert FILE with the server's certificate or its CA in PEM, or --insecure \
             to skip verification (testing only)"
        };
        format!("TLS certificate not trusted ({chain}). To fix: {fix}")
    } else {
        chain
    }
}

fn describe_http_error(url: &str, error: &reqwest::Error, ca_cert_given: bool) -> anyhow::Error {
    anyhow!(
        "HTTP push to {url} failed: {}",
        explain_http_error(error, ca_cert_given)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_source_ip_that_never_appears_fails_after_the_wait_naming_the_address() {
        // 192.0.2.0/24 is TEST-NET-1: never assigned to a host.
        let ip: IpAddr = "192.0.2.77".parse().unwrap();
        let started = std::time::Instant::now();
        let error = wait_for_source_ip(ip, Duration::from_millis(600), Duration::from_millis(100))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            started.elapsed() >= Duration::from_millis(600),
            "gave up early"
        );
        assert!(
            error.contains("source IP 192.0.2.77 not configured on this host after 0.6s"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_configured_source_ip_is_used_at_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap().to_string();
        // The whole of 127.0.0.0/8 is on the loopback interface.
        let source: IpAddr = "127.0.0.2".parse().unwrap();
        let stream = connect(&target, Some(source), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(stream.local_addr().unwrap().ip(), source);
        let (_, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip(), source);
    }
}
