//! TLS on socket connectors (`usetls = True`): the rustls set-up read from the
//! `tls*` keys, and the stream a connector reads and writes, plain or encrypted.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, ProtocolVersion, RootCertStore,
    ServerConfig, SignatureScheme,
};
use rustls_platform_verifier::BuilderVerifierExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::TlsSettings;

/// How long a peer has to complete the TLS handshake: a peer that connects and then says
/// nothing must not hold a connection slot, or a server output, for ever.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connector's TLS set-up failed, with the key whose value is at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SetupError {
    /// The config key (`tlscert`, `tlskey`, `tlsca`, `tlsservername`, `ipaddr`).
    pub(crate) key: &'static str,
    /// What is wrong with it.
    pub(crate) message: String,
}

impl SetupError {
    fn new(key: &'static str, message: String) -> Self {
        Self { key, message }
    }
}

/// A connector's TLS side, built once at start and shared by its connections.
#[derive(Clone)]
pub(crate) enum Tls {
    /// A server socket: the peer connects and we accept its handshake; `mutual` when
    /// every client must present a certificate (`tlsca`).
    Server { acceptor: TlsAcceptor, mutual: bool },
    /// A client socket: we connect and check the server's certificate for `name`.
    Client {
        connector: TlsConnector,
        name: ServerName<'static>,
    },
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Server { mutual, .. } => write!(f, "Tls::Server {{ mutual: {mutual} }}"),
            Self::Client { name, .. } => write!(f, "Tls::Client({name:?})"),
        }
    }
}

/// A connector's TLS side and the settings it was built from, so that it can be built again
/// from the same files (renewed certificates, on SIGHUP) while connections are being opened:
/// each new connection takes the side current when it opens.
#[derive(Debug)]
pub(crate) struct TlsSource {
    settings: TlsSettings,
    server: bool,
    host: String,
    current: RwLock<Tls>,
}

impl TlsSource {
    /// Builds the side as [`setup`] does.
    pub(crate) fn new(
        settings: &TlsSettings,
        server: bool,
        host: &str,
    ) -> Result<Self, SetupError> {
        Ok(Self {
            current: RwLock::new(setup(settings, server, host)?),
            settings: settings.clone(),
            server,
            host: host.to_owned(),
        })
    }

    /// The side a connection opened now uses.
    pub(crate) fn current(&self) -> Tls {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Reads the files again. On an error the side in use is kept, whole: a certificate
    /// replaced before its key must not leave the connector with neither.
    pub(crate) fn reload(&self) -> Result<(), SetupError> {
        let side = setup(&self.settings, self.server, &self.host)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = side;
        Ok(())
    }
}

/// The crypto provider: ring, as everywhere in the workspace (no C build for aws-lc).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the TLS side of a socket connector: `server` for a server socket, else a
/// client one that connects to `host`.
pub(crate) fn setup(settings: &TlsSettings, server: bool, host: &str) -> Result<Tls, SetupError> {
    let provider = provider();
    let identity = match (&settings.cert, &settings.key) {
        (Some(cert), Some(key)) => Some((certificates(cert, "tlscert")?, private_key(key)?)),
        _ => None,
    };
    if server {
        let Some((chain, key)) = identity else {
            return Err(SetupError::new(
                "tlscert",
                "missing: a TLS server socket needs tlscert and tlskey".into(),
            ));
        };
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| SetupError::new("usetls", e.to_string()))?;
        let builder = match &settings.ca {
            Some(ca) => {
                let roots = Arc::new(trust_anchors(ca)?);
                let mut verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
                if let Some(crl) = &settings.crl {
                    verifier = verifier
                        .with_crls(revocation_lists(crl)?)
                        .only_check_end_entity_revocation()
                        .enforce_revocation_expiration();
                }
                let verifier = verifier
                    .build()
                    .map_err(|e| SetupError::new("tlsca", e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| SetupError::new("tlskey", format!("does not go with tlscert: {e}")))?;
        return Ok(Tls::Server {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            mutual: settings.ca.is_some(),
        });
    }
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::new("usetls", e.to_string()))?;
    let builder = if settings.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(
                provider.signature_verification_algorithms,
            )))
    } else if let Some(ca) = &settings.ca {
        let roots = Arc::new(trust_anchors(ca)?);
        match &settings.crl {
            None => builder.with_root_certificates(roots),
            Some(crl) => {
                let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .with_crls(revocation_lists(crl)?)
                    .only_check_end_entity_revocation()
                    .enforce_revocation_expiration()
                    .build()
                    .map_err(|e| SetupError::new("tlscrl", e.to_string()))?;
                builder.with_webpki_verifier(verifier)
            }
        }
    } else {
        builder.with_platform_verifier().map_err(|e| {
            SetupError::new(
                "tlsca",
                format!("not given, and the system's trusted roots cannot be used: {e}"),
            )
        })?
    };
    let config = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| SetupError::new("tlskey", format!("does not go with tlscert: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    let (key, text) = match &settings.server_name {
        Some(name) => ("tlsservername", name.as_str()),
        None => ("ipaddr", host),
    };
    let name = ServerName::try_from(text.to_owned()).map_err(|_| {
        SetupError::new(
            key,
            format!("`{text}` is neither a DNS name nor an IP address to check the server for"),
        )
    })?;
    Ok(Tls::Client {
        connector: TlsConnector::from(Arc::new(config)),
        name,
    })
}

/// The PEM file's bytes; the error names the key and the path.
fn read_pem(path: &Path, key: &'static str) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path)
        .map_err(|e| SetupError::new(key, format!("cannot read {}: {e}", path.display())))
}

/// Every certificate in the PEM file at `path`, in order.
fn certificates(
    path: &Path,
    key: &'static str,
) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let pem = read_pem(path, key)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| SetupError::new(key, format!("{}: not PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(SetupError::new(
            key,
            format!(
                "{}: no certificate in it (a PEM \"BEGIN CERTIFICATE\" block)",
                path.display()
            ),
        ));
    }
    Ok(certs)
}

/// The first private key in the PEM file at `path`.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, SetupError> {
    let pem = read_pem(path, "tlskey")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key in it (a PEM \"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" \
                 or \"BEGIN EC PRIVATE KEY\" block)"
                    .to_owned()
            }
            other => format!("not PEM: {other}"),
        };
        SetupError::new("tlskey", format!("{}: {why}", path.display()))
    })
}

/// Every certificate revocation list in the PEM file at `path` (`tlscrl`).
fn revocation_lists(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, SetupError> {
    let pem = read_pem(path, "tlscrl")?;
    let lists = CertificateRevocationListDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SetupError::new("tlscrl", format!("{}: not PEM: {e}", path.display())))?;
    if lists.is_empty() {
        return Err(SetupError::new(
            "tlscrl",
            format!(
                "{}: no revocation list in it (a PEM \"BEGIN X509 CRL\" block)",
                path.display()
            ),
        ));
    }
    Ok(lists)
}

/// The certificates of the `tlsca` file as trust anchors.
fn trust_anchors(path: &Path) -> Result<RootCertStore, SetupError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, "tlsca")? {
        roots.add(cert).map_err(|e| {
            SetupError::new(
                "tlsca",
                format!("{}: a certificate cannot be trusted: {e}", path.display()),
            )
        })?;
    }
    Ok(roots)
}

/// `tlsinsecure`: takes any server certificate, but still checks that the server holds
/// its key (the handshake signatures), so the session is encrypted to whoever answered.
#[derive(Debug)]
struct AnyServer(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// A connection as a connector reads and writes it.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP, either side, with what was read while waiting to learn whether the
    /// server accepted a TLS 1.3 client (see [`confirm_accepted`]), handed out first.
    Tls {
        stream: Box<tokio_rustls::TlsStream<TcpStream>>,
        unread: Vec<u8>,
    },
}

/// The read half of a [`Stream`].
pub(crate) type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a [`Stream`].
pub(crate) type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

impl Stream {
    /// Secures a fresh TCP connection with `tls` as it is now (the handshake, within
    /// [`HANDSHAKE_TIMEOUT`]), or keeps it plain without.
    ///
    /// # Errors
    ///
    /// A failed or timed-out handshake, described for the log: what the peer sent instead
    /// of TLS when it can be told (plain MLLP or ASTM).
    pub(crate) async fn open(
        tcp: TcpStream,
        tls: Option<&TlsSource>,
        peer: SocketAddr,
    ) -> Result<Self, String> {
        let _ = tcp.set_nodelay(true);
        let Some(tls) = tls.map(TlsSource::current) else {
            return Ok(Self::Plain(tcp));
        };
        let handshake = async {
            match &tls {
                Tls::Server { acceptor, mutual } => {
                    plain_text_refused(&tcp).await?;
                    acceptor
                        .accept(tcp)
                        .await
                        .map(|s| Self::Tls {
                            stream: Box::new(s.into()),
                            unread: Vec::new(),
                        })
                        .map_err(|e| {
                            let text = e.to_string();
                            let hint = if let Some(expired) = expired_revocation_list(&e, "client")
                            {
                                expired
                            } else if text.contains("UnknownRevocationStatus") {
                                "tlscrl has no revocation list from the CA that issued the \
                                 client's certificate"
                                    .to_owned()
                            } else if text.contains("Revoked") {
                                "the client's certificate is revoked by a list in tlscrl".to_owned()
                            } else if *mutual && text.contains("certificate") {
                                "tlsca is set: every client must present a certificate issued \
                                 by a CA in that file"
                                    .to_owned()
                            } else {
                                return format!("TLS handshake with {peer} failed: {e}");
                            };
                            format!("TLS handshake with {peer} failed: {e} ({hint})")
                        })
                }
                Tls::Client { connector, name } => {
                    let started = tokio::time::Instant::now();
                    let failed =
                        |e: &io::Error| format!("TLS handshake with {peer} failed: {}", explain(e));
                    let mut stream = connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|e| failed(&e))?;
                    let mut unread = Vec::new();
                    if stream.get_ref().1.protocol_version() == Some(ProtocolVersion::TLSv1_3) {
                        match confirm_accepted(&mut stream, started.elapsed()).await {
                            Ok(Some(early)) => unread = early,
                            Ok(None) => {}
                            Err(e) => return Err(failed(&e)),
                        }
                    }
                    Ok(Self::Tls {
                        stream: Box::new(stream.into()),
                        unread,
                    })
                }
            }
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "{peer} did not complete the TLS handshake within {HANDSHAKE_TIMEOUT:?}"
                ))
            })
    }

    /// Halves that a reader and a writer task can own.
    pub(crate) fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            // Lock-free halves for plain TCP.
            Self::Plain(tcp) => {
                let (read, write) = tcp.into_split();
                (Box::new(read), Box::new(write))
            }
            tls @ Self::Tls { .. } => {
                let (read, write) = tokio::io::split(tls);
                (Box::new(read), Box::new(write))
            }
        }
    }
}

/// In TLS 1.3 a client's handshake is over before the server has checked the client's
/// certificate: a refusal (no certificate, an unknown CA) comes as an alert a round trip
/// later. A message that expects no reply, written at once, would be counted delivered
/// into a connection the server is refusing. So a TLS 1.3 client waits for that alert:
/// twice the handshake's duration plus 50 ms, at most 2 s. Whatever application data
/// comes meanwhile is returned, to be read first.
async fn confirm_accepted(
    stream: &mut tokio_rustls::client::TlsStream<TcpStream>,
    handshake: Duration,
) -> io::Result<Option<Vec<u8>>> {
    let wait = (handshake * 2 + Duration::from_millis(50)).min(Duration::from_secs(2));
    let mut buf = vec![0_u8; 8 * 1024];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        // Nothing but session tickets (which rustls takes in itself): accepted.
        Err(_) => Ok(None),
        Ok(Ok(0)) => Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the server closed the connection right after the handshake (it may refuse this \
             side's certificate: tlscert, tlskey)",
        )),
        Ok(Ok(n)) => {
            buf.truncate(n);
            Ok(Some(buf))
        }
        Ok(Err(e)) => Err(e),
    }
}

/// The first byte of a TLS record carrying a handshake message (a ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A TLS client's first byte is a handshake record's. A peer that sends plain MLLP (VT),
/// ASTM (ENQ) or anything else to a TLS port would otherwise get only rustls's "received
/// corrupt message" in the log.
async fn plain_text_refused(tcp: &TcpStream) -> Result<(), String> {
    let mut first = [0_u8; 1];
    let peer = tcp
        .peer_addr()
        .map_or_else(|_| "the peer".to_owned(), |a| a.to_string());
    match tcp.peek(&mut first).await {
        Ok(0) => Err(format!("{peer} closed before the TLS handshake")),
        Ok(_) if first[0] == TLS_HANDSHAKE_RECORD => Ok(()),
        Ok(_) if first[0] == mllp_hl7::START_BLOCK => Err(format!(
            "{peer} sent plain MLLP (VT) to a TLS port (usetls = True); closing. The sender \
             must use TLS, or this connector must not"
        )),
        Ok(_) if first[0] == crate::connector::ENQ => Err(format!(
            "{peer} sent ASTM ENQ in the clear to a TLS port (usetls = True); closing"
        )),
        Ok(_) => Err(format!(
            "{peer} did not open with a TLS handshake (first byte 0x{:02X}) on a TLS port \
             (usetls = True); closing",
            first[0]
        )),
        Err(e) => Err(format!("{peer}: {e}")),
    }
}

/// A client handshake error, with what to do about it when that can be told.
fn explain(error: &io::Error) -> String {
    let text = error.to_string();
    if let Some(mut advice) = expired_revocation_list(error, "server") {
        // A sentence of its own here, as the other advice is.
        advice[..1].make_ascii_uppercase();
        return format!("{text}. {advice}");
    }
    let advice = if text.contains("CaUsedAsEndEntity") {
        "The server presents a CA certificate (CA:TRUE) as its own; it needs a certificate \
         with CA:FALSE"
    } else if text.contains("expired") || text.contains("NotValidYet") {
        "The server's certificate is outside its validity period (or this machine's clock is \
         wrong)"
    } else if text.contains("not valid for name") || text.contains("NotValidForName") {
        "The server's certificate does not carry the name checked: set tlsservername = a name \
         it carries (the default is ipaddr)"
    } else if text.contains("revocation list") {
        "a revocation list in tlscrl names the server's CA as its issuer but that CA did not \
         sign it (or it is damaged): put the CA's own CRL in the file"
    } else if text.contains("UnknownRevocationStatus") {
        "tlscrl has no revocation list from the CA that issued the server's certificate: add \
         that CA's CRL to the file"
    } else if text.contains("Revoked") {
        "The server's certificate is revoked by a list in tlscrl"
    } else if text.contains("UnknownIssuer") || text.contains("BadSignature") {
        "The server's certificate is not trusted: give tlsca = the PEM file of the server's \
         certificate or of its CA"
    } else if text.contains("CertificateRequired")
        || text.contains("UnknownCA")
        || text.contains("BadCertificate")
        || text.contains("refuse this side's certificate")
    {
        "The server refused this side: it asks for a client certificate it trusts (tlscert, \
         tlskey)"
    } else {
        return text;
    };
    format!("{text}. {advice}")
}

/// When `error` is a handshake refused because the `peer`'s CA's list in `tlscrl` is past
/// its nextUpdate: what happened, when, and what to do. An out-of-date list cannot tell
/// whether a certificate was revoked since, so it counts as no list.
fn expired_revocation_list(error: &io::Error, peer: &str) -> Option<String> {
    let rustls::Error::InvalidCertificate(invalid) =
        error.get_ref()?.downcast_ref::<rustls::Error>()?
    else {
        return None;
    };
    let since = match invalid {
        CertificateError::ExpiredRevocationListContext { next_update, .. } => {
            i64::try_from(next_update.as_secs())
                .ok()
                .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
                .map(|at| format!(" since {}", at.format("%Y-%m-%d %H:%M:%S UTC")))
                .unwrap_or_default()
        }
        CertificateError::ExpiredRevocationList => String::new(),
        _ => return None,
    };
    Some(format!(
        "the revocation list in tlscrl from the CA that issued the {peer}'s certificate is \
         out of date (past its nextUpdate{since}), so the {peer} is refused: put that CA's \
         current CRL in the file and send the router SIGHUP"
    ))
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls { unread, .. } if !unread.is_empty() => {
                let n = unread.len().min(buf.remaining());
                buf.put_slice(&unread[..n]);
                unread.drain(..n);
                Poll::Ready(Ok(()))
            }
            Self::Tls { stream, .. } => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls { stream: s, .. } => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls { stream: s, .. } => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls { stream: s, .. } => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls { stream: s, .. } => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls { stream, .. } => stream.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A self-signed certificate for 127.0.0.1 and its key, written as `name.pem` and
    /// `name.key` in `dir`.
    fn identity(dir: &Path, name: &str) {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), made.cert.pem()).unwrap();
        std::fs::write(
            dir.join(format!("{name}.key")),
            made.signing_key.serialize_pem(),
        )
        .unwrap();
    }

    fn server_settings(dir: &Path) -> TlsSettings {
        TlsSettings {
            cert: Some(dir.join("server.pem")),
            key: Some(dir.join("server.key")),
            ..TlsSettings::default()
        }
    }

    /// Runs one connection between a server with `server.pem` and a client set up
    /// with `client`: the client's error, or `Ok` once a line went each way.
    async fn exchange(dir: &Path, client: &TlsSettings) -> Result<(), String> {
        let server = TlsSource::new(&server_settings(dir), true, "127.0.0.1").unwrap();
        let client = TlsSource::new(client, false, "127.0.0.1").map_err(|e| e.message)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let served = tokio::spawn(async move {
            let (tcp, peer) = listener.accept().await.unwrap();
            let mut stream = Stream::open(tcp, Some(&server), peer).await?;
            let mut line = [0_u8; 5];
            stream
                .read_exact(&mut line)
                .await
                .map_err(|e| e.to_string())?;
            stream
                .write_all(b"pong\n")
                .await
                .map_err(|e| e.to_string())?;
            stream.shutdown().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(line)
        });
        let tcp = TcpStream::connect(address).await.unwrap();
        let opened = Stream::open(tcp, Some(&client), address).await;
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(e) => {
                served.abort();
                return Err(e);
            }
        };
        stream.write_all(b"ping\n").await.unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"pong\n");
        assert_eq!(&served.await.unwrap().unwrap(), b"ping\n");
        assert!(matches!(stream, Stream::Tls { .. }));
        Ok(())
    }

    #[tokio::test]
    async fn a_client_trusts_tlsca_checks_the_name_and_skips_both_only_when_insecure() {
        let dir = tempfile::tempdir().unwrap();
        identity(dir.path(), "server");
        identity(dir.path(), "other");
        let trusting = |ca: &str| TlsSettings {
            ca: Some(dir.path().join(ca)),
            ..TlsSettings::default()
        };
        exchange(dir.path(), &trusting("server.pem")).await.unwrap();

        let untrusted = exchange(dir.path(), &trusting("other.pem"))
            .await
            .unwrap_err();
        assert!(
            untrusted.contains("invalid peer certificate") && untrusted.contains("give tlsca"),
            "{untrusted}"
        );

        let misnamed = TlsSettings {
            server_name: Some("lis.example".into()),
            ..trusting("server.pem")
        };
        let refused = exchange(dir.path(), &misnamed).await.unwrap_err();
        assert!(
            refused.contains("not valid for name \"lis.example\""),
            "{refused}"
        );

        let insecure = TlsSettings {
            insecure: true,
            ..trusting("other.pem")
        };
        exchange(dir.path(), &insecure).await.unwrap();
    }

    /// A client socket with `tlscrl` refuses a server certificate its CA revoked, and one
    /// from a CA the file holds no list of, or from a list past its nextUpdate, each with
    /// what to do; a current list that revokes another certificate lets the server in.
    #[tokio::test]
    async fn a_client_refuses_a_revoked_server_certificate() {
        use rcgen::{
            BasicConstraints, CertificateParams, CertificateRevocationListParams, IsCa, Issuer,
            KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
        };
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        let authority = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let cert = params.self_signed(&key).unwrap();
            (Issuer::new(params, key), cert.pem())
        };
        let (issuer, ca) = authority("lab CA");
        write("ca.pem", ca);
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.serial_number = Some(SerialNumber::from(7_u64));
        write("server.pem", params.signed_by(&key, &issuer).unwrap().pem());
        write("server.key", key.serialize_pem());
        let crl_until = |issuer: &Issuer<'_, KeyPair>, serial: u64, next_update_year: i32| {
            CertificateRevocationListParams {
                this_update: rcgen::date_time_ymd(2025, 1, 1),
                next_update: rcgen::date_time_ymd(next_update_year, 1, 1),
                crl_number: SerialNumber::from(1_u64),
                issuing_distribution_point: None,
                revoked_certs: vec![RevokedCertParams {
                    serial_number: SerialNumber::from(serial),
                    revocation_time: rcgen::date_time_ymd(2025, 6, 1),
                    reason_code: None,
                    invalidity_date: None,
                }],
                key_identifier_method: KeyIdMethod::Sha256,
            }
            .signed_by(issuer)
            .unwrap()
            .pem()
            .unwrap()
        };
        let crl = |issuer: &Issuer<'_, KeyPair>, serial: u64| crl_until(issuer, serial, 2099);
        let checking = |list: &str| TlsSettings {
            ca: Some(dir.path().join("ca.pem")),
            crl: Some(dir.path().join(list)),
            ..TlsSettings::default()
        };

        write("revoked.pem", crl(&issuer, 7));
        let refused = exchange(dir.path(), &checking("revoked.pem"))
            .await
            .unwrap_err();
        assert!(
            refused.contains("Revoked")
                && refused.contains("The server's certificate is revoked by a list in tlscrl"),
            "{refused}"
        );

        let (other, _) = authority("another CA");
        write("other.pem", crl(&other, 7));
        let unknown = exchange(dir.path(), &checking("other.pem"))
            .await
            .unwrap_err();
        assert!(
            unknown.contains("tlscrl has no revocation list from the CA that issued the server's"),
            "{unknown}"
        );

        // A list that claims to be the lab CA's but another key signed.
        let (impostor, _) = authority("lab CA");
        write("forged.pem", crl(&impostor, 8));
        let forged = exchange(dir.path(), &checking("forged.pem"))
            .await
            .unwrap_err();
        assert!(
            forged.contains("invalid certificate revocation list: BadSignature")
                && forged.contains("a revocation list in tlscrl names the server's CA"),
            "{forged}"
        );

        write("others-revoked.pem", crl(&issuer, 8));
        exchange(dir.path(), &checking("others-revoked.pem"))
            .await
            .unwrap();

        // The same list, out of date: it cannot tell what was revoked since.
        write("expired.pem", crl_until(&issuer, 8, 2026));
        let expired = exchange(dir.path(), &checking("expired.pem"))
            .await
            .unwrap_err();
        assert!(
            expired.contains("certificate revocation list expired: verification time")
                && expired.contains(
                    ". The revocation list in tlscrl from the CA that issued the server's \
                 certificate is out of date (past its nextUpdate since 2026-01-01 00:00:00 \
                 UTC), so the server is refused: put that CA's current CRL in the file and \
                 send the router SIGHUP"
                ),
            "{expired}"
        );
    }

    /// A peer that speaks something else than TLS to a TLS server socket is named for
    /// what it sent, before any handshake.
    #[tokio::test]
    async fn a_server_names_what_a_peer_sent_instead_of_tls() {
        let dir = tempfile::tempdir().unwrap();
        identity(dir.path(), "server");
        let server = TlsSource::new(&server_settings(dir.path()), true, "127.0.0.1").unwrap();
        for (opening, expected) in [
            (&b"\x0bMSH|"[..], "sent plain MLLP (VT) to a TLS port"),
            (b"\x05", "sent ASTM ENQ in the clear"),
            (
                b"GET / HTTP/1.1\r\n",
                "did not open with a TLS handshake (first byte 0x47)",
            ),
        ] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let mut client = TcpStream::connect(address).await.unwrap();
            client.write_all(opening).await.unwrap();
            let (tcp, peer) = listener.accept().await.unwrap();
            let refused = Stream::open(tcp, Some(&server), peer).await.unwrap_err();
            assert!(refused.contains(expected), "{refused}");
        }
    }

    /// Each kind of certificate failure gets its own advice; the name/tlsca advice was
    /// given for all of them (an expired certificate, a CA posing as the server).
    #[test]
    fn certificate_failures_get_advice_that_fits() {
        let advice = |text: &str| explain(&io::Error::new(io::ErrorKind::InvalidData, text));
        let cases = [
            (
                "invalid peer certificate: CaUsedAsEndEntity",
                "with CA:FALSE",
            ),
            (
                "invalid peer certificate: certificate expired: verification time 1, but \
                 certificate is not valid after 0",
                "validity period",
            ),
            (
                "invalid peer certificate: certificate not valid for name \"x\"",
                "set tlsservername",
            ),
            ("invalid peer certificate: UnknownIssuer", "give tlsca"),
            (
                "received fatal alert: CertificateRequired",
                "tlscert, tlskey",
            ),
        ];
        for (error, expected) in cases {
            let text = advice(error);
            assert!(text.starts_with(error) && text.contains(expected), "{text}");
        }
        assert_eq!(advice("connection reset"), "connection reset");
    }

    #[test]
    fn set_up_errors_name_the_key_at_fault() {
        let dir = tempfile::tempdir().unwrap();
        identity(dir.path(), "server");
        identity(dir.path(), "other");
        let key_of = |settings: &TlsSettings, server: bool, host: &str| {
            let e = setup(settings, server, host).unwrap_err();
            (e.key, e.message)
        };
        let (key, message) = key_of(&TlsSettings::default(), false, "bad host!");
        assert_eq!(key, "ipaddr", "{message}");
        let named = TlsSettings {
            server_name: Some("not a name!".into()),
            ..TlsSettings::default()
        };
        assert_eq!(key_of(&named, false, "127.0.0.1").0, "tlsservername");
        let no_ca = TlsSettings {
            ca: Some(dir.path().join("absent.pem")),
            ..TlsSettings::default()
        };
        let (key, message) = key_of(&no_ca, false, "127.0.0.1");
        assert_eq!(key, "tlsca");
        assert!(message.contains("cannot read") && message.contains("absent.pem"));
        let key_is_a_cert = TlsSettings {
            key: Some(dir.path().join("server.pem")),
            ..server_settings(dir.path())
        };
        let (key, message) = key_of(&key_is_a_cert, true, "127.0.0.1");
        assert_eq!(key, "tlskey");
        assert!(message.contains("no private key"), "{message}");
        let mismatched = TlsSettings {
            key: Some(dir.path().join("other.key")),
            ..server_settings(dir.path())
        };
        let (key, message) = key_of(&mismatched, true, "127.0.0.1");
        assert_eq!(key, "tlskey");
        assert!(message.contains("does not go with tlscert"), "{message}");
        std::fs::write(dir.path().join("empty.pem"), "not pem at all\n").unwrap();
        let empty = TlsSettings {
            cert: Some(dir.path().join("empty.pem")),
            ..server_settings(dir.path())
        };
        let (key, message) = key_of(&empty, true, "127.0.0.1");
        assert_eq!(key, "tlscert");
        assert!(message.contains("no certificate in it"), "{message}");
    }
}
