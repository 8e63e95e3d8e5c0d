//! TLS on socket connectors (`usetls`), end to end: the router binary with real
//! certificates (made here with rcgen), real loopback TLS connections both ways, mutual
//! TLS, and the refusals an integrator meets first (an untrusted server, a client
//! without a certificate, plain MLLP to a TLS port).

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use mllp_hl7::{AckBuilder, Message, MllpClient, MllpCodec, MllpFrame, Reply};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa, Issuer,
    KeyIdMethod, KeyPair, RevocationReason, RevokedCertParams, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::codec::Framed;

/// A test CA, a server certificate for 127.0.0.1 and a client certificate it signed, and
/// a second CA nobody trusts; every one also written as PEM files under `dir`.
struct Pki {
    ca: CertificateDer<'static>,
    /// The test CA's key and name, to sign revocation lists with.
    issuer: Issuer<'static, KeyPair>,
    server: (CertificateDer<'static>, Vec<u8>),
    client: (CertificateDer<'static>, Vec<u8>),
    untrusted_server: (CertificateDer<'static>, Vec<u8>),
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Self {
        let (issuer, ca) = authority("test CA", dir, "ca.pem");
        let leaf = |name: &str, file: &str, issuer: &Issuer<'_, KeyPair>| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            params.serial_number = Some(SerialNumber::from(leaf_serial(file)));
            let cert = params.signed_by(&key, issuer).unwrap();
            std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
            (cert.der().clone(), key.serialize_der())
        };
        let server = leaf("lis", "server", &issuer);
        let client = leaf("analyzer", "client", &issuer);
        let (other, _) = authority("someone else's CA", dir, "other-ca.pem");
        let untrusted_server = leaf("impostor", "impostor", &other);
        Self {
            ca,
            issuer,
            server,
            client,
            untrusted_server,
            dir: dir.to_owned(),
        }
    }

    /// Writes `file`: the test CA's revocation list, revoking the certificates written as
    /// `revoked` (`server`, `client`).
    fn write_crl(&self, file: &str, revoked: &[&str]) {
        self.write_crl_valid_until(file, revoked, (2099, 1, 1));
    }

    /// A revocation list whose nextUpdate is `(year, month, day)`.
    fn write_crl_valid_until(&self, file: &str, revoked: &[&str], (y, m, d): (i32, u8, u8)) {
        let params = CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2025, 1, 1),
            next_update: rcgen::date_time_ymd(y, m, d),
            crl_number: SerialNumber::from(1_u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|name| RevokedCertParams {
                    serial_number: SerialNumber::from(leaf_serial(name)),
                    revocation_time: rcgen::date_time_ymd(2025, 6, 1),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).unwrap();
        std::fs::write(self.dir.join(file), crl.pem().unwrap()).unwrap();
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    fn roots(&self) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        Arc::new(roots)
    }

    /// A TLS client that trusts the test CA, presenting the client certificate or not.
    fn connector(&self, with_certificate: bool) -> TlsConnector {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(self.roots());
        let config = if with_certificate {
            builder
                .with_client_auth_cert(vec![self.client.0.clone()], key(&self.client.1))
                .unwrap()
        } else {
            builder.with_no_client_auth()
        };
        TlsConnector::from(Arc::new(config))
    }

    /// A TLS server with `identity`, asking every client for a certificate from the test
    /// CA.
    fn acceptor(&self, identity: &(CertificateDer<'static>, Vec<u8>)) -> TlsAcceptor {
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots(), provider())
            .build()
            .unwrap();
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![identity.0.clone()], key(&identity.1))
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }
}

/// The serial number of the test certificate written as `file` (`server`, `client`, ...).
fn leaf_serial(file: &str) -> u64 {
    match file {
        "server" => 1001,
        "client" => 1002,
        _ => 1003,
    }
}

/// A self-signed CA, its certificate also written to `dir/file`.
fn authority(
    name: &str,
    dir: &Path,
    file: &str,
) -> (Issuer<'static, KeyPair>, CertificateDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join(file), cert.pem()).unwrap();
    (Issuer::new(params, key), cert.der().clone())
}

fn key(der: &[u8]) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.to_vec()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// An MLLP client over TLS to the router on `port`.
async fn tls_client(
    pki: &Pki,
    port: u16,
    with_certificate: bool,
) -> std::io::Result<MllpClient<tokio_rustls::client::TlsStream<TcpStream>>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = pki.connector(with_certificate).connect(name, tcp).await?;
    Ok(MllpClient::new(tls, MllpCodec::new()).with_ack_timeout(Duration::from_secs(5)))
}

/// A receiving LIS over mutual TLS on `listener`: keeps every message, answers AA, and
/// records the length of each client certificate chain it saw, the handshakes it refused
/// and how each connection ended (`clean`: with close_notify).
#[derive(Default, Clone)]
struct TlsPeer {
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    client_certificates: Arc<Mutex<Vec<usize>>>,
    failed_handshakes: Arc<Mutex<Vec<String>>>,
    ends: Arc<Mutex<Vec<String>>>,
}

impl TlsPeer {
    fn start(listener: TcpListener, acceptor: TlsAcceptor) -> Self {
        let peer = Self::default();
        let this = peer.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let this = this.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let tls = match acceptor.accept(tcp).await {
                        Ok(tls) => tls,
                        Err(e) => {
                            this.failed_handshakes.lock().unwrap().push(e.to_string());
                            return;
                        }
                    };
                    let chain = tls.get_ref().1.peer_certificates().map_or(0, <[_]>::len);
                    this.client_certificates.lock().unwrap().push(chain);
                    let mut framed = Framed::new(tls, MllpCodec::new());
                    let end = loop {
                        let frame = match framed.next().await {
                            None => break "clean".to_owned(),
                            Some(Err(e)) => break e.to_string(),
                            Some(Ok(frame)) => frame,
                        };
                        let MllpFrame::Message(payload) = frame else {
                            continue;
                        };
                        this.received.lock().unwrap().push(payload.to_vec());
                        let message = Message::parse(&payload).unwrap();
                        let ack = AckBuilder::new(&message).build().unwrap();
                        framed.send(&ack[..]).await.unwrap();
                    };
                    this.ends.lock().unwrap().push(end);
                });
            }
        });
        peer
    }
}

/// A socket input with `usetls` and `tlsca`: an analyzer with a certificate from the CA
/// gets its HL7 ACK over TLS and the message is routed; one without a certificate, and
/// one sending plain MLLP, get nothing stored and a log line that says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutual_tls_input_takes_certified_senders_only() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let port = free_port();
    let config = format!(
        "[general]\nuseconnections = in, files\nloglvl = debug\n\
         [in]\ntranstech = socket\ntransdir = in\nusehl7 = True\nqueuename = q\nport = {port}\n\
         usetls = True\ntlscert = server.pem\ntlskey = server.key\ntlsca = ca.pem\n\
         [files]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;

    let mut analyzer = tls_client(&pki, port, true).await.unwrap();
    let reply = analyzer.send(&oru("TLS1", "LAB")).await.unwrap();
    assert_acknowledges(reply, b"TLS1");
    // Most senders close without close_notify: a close like any other, not a warning.
    let (tcp, _) = analyzer.into_inner().into_inner();
    drop(tcp);
    wait_until("the ragged close", || {
        router
            .log_text()
            .contains("closed the connection without TLS close_notify")
    })
    .await;
    assert!(!router.log_text().contains("WARN"), "{}", router.log_text());

    // No client certificate: the handshake is refused (TLS 1.3 reports it on first use).
    let refused = match tls_client(&pki, port, false).await {
        Err(e) => e.to_string(),
        Ok(mut c) => format!("{:?}", c.send(&oru("NOCERT", "LAB")).await),
    };
    assert!(
        refused.contains("CertificateRequired") || refused.contains("certificate"),
        "{refused}"
    );

    // Plain MLLP to the TLS port: no ACK, and the log names the mistake.
    let mut plain = client_waiting(port, Duration::from_secs(2)).await;
    assert!(plain.send(&oru("PLAIN", "LAB")).await.is_err());
    wait_until("the plain-MLLP line", || {
        router
            .log_text()
            .contains("sent plain MLLP (VT) to a TLS port")
    })
    .await;
    wait_until("the missing-certificate line", || {
        router
            .log_text()
            .contains("failed: peer sent no certificates (tlsca is set: every client must")
    })
    .await;

    let out = dir.path().join("out");
    wait_until("1 file", || files_in(&out).len() == 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let files = files_in(&out);
    assert_eq!(files.len(), 1, "only the certified sender's message");
    assert_eq!(std::fs::read(&files[0]).unwrap(), oru("TLS1", "LAB"));
}

/// A client socket output with `usetls`: it checks the LIS's certificate against
/// `tlsca`, presents its own (`tlscert`/`tlskey`) and delivers; pointed at a server whose
/// certificate the CA did not sign, it delivers nothing, keeps the message queued and
/// says what to fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_output_checks_the_server_and_presents_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let inp = free_port();
    let lis_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let impostor_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lis_port = lis_listener.local_addr().unwrap().port();
    let impostor_port = impostor_listener.local_addr().unwrap().port();
    let lis = TlsPeer::start(lis_listener, pki.acceptor(&pki.server));
    let impostor = TlsPeer::start(impostor_listener, pki.acceptor(&pki.untrusted_server));
    let config = format!(
        "[general]\nuseconnections = in, lis, impostor\nloglvl = info\n\
         [in]\ntranstech = socket\ntransdir = in\nusehl7 = True\nqueuename = q\nport = {inp}\n\
         [lis]\ntranstech = socket\ntransdir = out\nqueuename = q\ncreateserversocket = False\n\
         port = {lis_port}\nusetls = True\ntlsca = {ca}\ntlscert = {cert}\ntlskey = {key}\n\
         retrydelay = 0.05\nretrymaxdelay = 0.2\n\
         [impostor]\ntranstech = socket\ntransdir = out\nqueuename = q\n\
         createserversocket = False\nport = {impostor_port}\nusetls = True\ntlsca = ca.pem\n\
         tlscert = client.pem\ntlskey = client.key\nretrydelay = 0.05\nretrymaxdelay = 0.2\n",
        ca = pki.path("ca.pem"),
        cert = pki.path("client.pem"),
        key = pki.path("client.key"),
    );
    let router = RouterProc::start(dir.path(), &config).await;
    let mut analyzer = client(inp).await;
    for id in ["OUT1", "OUT2"] {
        assert_acknowledges(analyzer.send(&oru(id, "LAB")).await.unwrap(), id.as_bytes());
    }
    wait_until("both messages at the LIS", || {
        lis.received.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(
        *lis.received.lock().unwrap(),
        [oru("OUT1", "LAB"), oru("OUT2", "LAB")]
    );
    assert_eq!(
        *lis.client_certificates.lock().unwrap(),
        [1],
        "one connection, with the router's client certificate"
    );
    wait_until("the untrusted-server line", || {
        router.log_text().contains("is not trusted: give tlsca")
    })
    .await;
    assert!(impostor.received.lock().unwrap().is_empty());
    assert!(impostor.client_certificates.lock().unwrap().is_empty());
    let log = router.log_text();
    assert!(log.contains("give tlsca"), "{log}");
    // At a stop the output says goodbye with close_notify, not a bare TCP close that a
    // receiver may log as an error.
    let mut router = router;
    assert!(router.terminate(WAIT).success());
    wait_until("the LIS connection ended", || {
        !lis.ends.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(*lis.ends.lock().unwrap(), ["clean"]);
}

/// `--check` opens the TLS files: one missing, one holding no key, and a key that is not
/// the certificate's are refused with their section and key; `usetls` keys without
/// `usetls = True` are refused before that.
#[test]
fn tls_files_that_cannot_work_fail_the_check_with_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let _pki = Pki::new(dir.path());
    let check = |config: &str| {
        std::fs::write(dir.path().join("router.cfg"), config).unwrap();
        let out = run_router(dir.path(), &["--check"]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let base = "[general]\nuseconnections = in, files\n\
                [in]\ntranstech = socket\ntransdir = in\nqueuename = q\nport = 2575\nusetls = True\n\
                [files]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n";
    // (the TLS lines of [in], what stderr must hold)
    let refused = [
        (
            "usetls = True\ntlscert = missing.pem\ntlskey = server.key\n",
            &["[in] tlscert: cannot read", "missing.pem"][..],
        ),
        (
            "usetls = True\ntlscert = server.pem\ntlskey = server.pem\n",
            &["[in] tlskey:", "no private key"],
        ),
        (
            "usetls = True\ntlscert = server.pem\ntlskey = client.key\n",
            &["[in] tlskey: does not go with tlscert"],
        ),
        (
            "tlscert = server.pem\ntlskey = server.key\n",
            &["[in] tlscert: is set but usetls is not True"],
        ),
        (
            "usetls = True\n",
            &["[in] tlscert: missing: a TLS server socket needs tlscert"],
        ),
        (
            "usetls = True\ntlscert = server.pem\ntlskey = server.key\ntlscrl = crl.pem\n",
            &["[in] tlscrl: needs tlsca = FILE"],
        ),
        (
            "usetls = True\ntlscert = server.pem\ntlskey = server.key\ntlsca = ca.pem\n\
             tlscrl = ca.pem\n",
            &[
                "[in] tlscrl:",
                "ca.pem: no revocation list in it (a PEM \"BEGIN X509 CRL\"",
            ],
        ),
    ];
    for (lines, expected) in refused {
        let (code, err) = check(&base.replace("usetls = True\n", lines));
        assert_eq!(code, Some(2), "{lines}: {err}");
        for part in expected {
            assert!(err.contains(part), "{lines}: {err}");
        }
    }
    let (code, out) = check(&base.replace(
        "usetls = True\n",
        "usetls = True\ntlscert = server.pem\ntlskey = server.key\ntlsca = ca.pem\n",
    ));
    assert_eq!(code, Some(0), "{out}");
}

/// The other two roles: a client socket input that connects over TLS to an analyzer
/// serving its results (and presents the router's certificate), and a server socket
/// output that a LIS connects to over TLS to take them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_input_and_a_server_output_speak_tls_too() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let analyzer_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let analyzer_port = analyzer_listener.local_addr().unwrap().port();
    let serve_port = free_port();
    let config = format!(
        "[general]\nuseconnections = pull, serve\nloglvl = info\n\
         [pull]\ntranstech = socket\ntransdir = in\nusehl7 = True\nqueuename = q\n\
         createserversocket = False\nport = {analyzer_port}\nusetls = True\ntlsca = ca.pem\n\
         tlscert = client.pem\ntlskey = client.key\nretrydelay = 0.05\nretrymaxdelay = 0.2\n\
         [serve]\ntranstech = socket\ntransdir = out\nqueuename = q\nport = {serve_port}\n\
         usetls = True\ntlscert = server.pem\ntlskey = server.key\n"
    );
    let _router = RouterProc::start(dir.path(), &config).await;

    // The analyzer: the router connects; the analyzer sends one result and reads its ACK.
    let acceptor = pki.acceptor(&pki.server);
    let (tcp, _) = tokio::time::timeout(WAIT, analyzer_listener.accept())
        .await
        .unwrap()
        .unwrap();
    let tls = acceptor.accept(tcp).await.unwrap();
    assert_eq!(
        tls.get_ref().1.peer_certificates().map(<[_]>::len),
        Some(1),
        "the router presented its client certificate"
    );
    let mut analyzer = MllpClient::new(tls, MllpCodec::new()).with_ack_timeout(WAIT);
    assert_acknowledges(analyzer.send(&oru("PULL1", "LAB")).await.unwrap(), b"PULL1");

    // The LIS connects to the router's TLS output and takes the message.
    let lis = tls_client(&pki, serve_port, false).await.unwrap();
    let mut framed = Framed::new(lis.into_inner(), MllpCodec::new());
    let frame = tokio::time::timeout(WAIT, framed.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let MllpFrame::Message(payload) = frame else {
        panic!("expected a message, got {frame:?}");
    };
    assert_eq!(payload.to_vec(), oru("PULL1", "LAB"));
    let ack = AckBuilder::new(&Message::parse(&payload).unwrap())
        .build()
        .unwrap();
    framed.send(&ack[..]).await.unwrap();
}

/// A server output secures each receiver in a task of its own: a connection that says
/// nothing (a port scanner, an attacker) no longer holds the output in its handshake for
/// 10 s, during which the real receiver waited and nothing was delivered. Opening one such
/// connection every 10 s held the output to one message per 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_does_not_hold_up_a_tls_server_output() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let (inp, serve) = (free_port(), free_port());
    let config = format!(
        "[general]\nuseconnections = in, serve\nloglvl = info\n\
         [in]\ntranstech = socket\ntransdir = in\nusehl7 = True\nqueuename = q\nport = {inp}\n\
         [serve]\ntranstech = socket\ntransdir = out\nqueuename = q\nport = {serve}\n\
         usetls = True\ntlscert = server.pem\ntlskey = server.key\ntlsca = ca.pem\n"
    );
    let router = RouterProc::start(dir.path(), &config).await;
    let silent = TcpStream::connect(("127.0.0.1", serve)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut analyzer = client(inp).await;
    assert_acknowledges(analyzer.send(&oru("S1", "LAB")).await.unwrap(), b"S1");

    // Well inside the 10 s handshake limit the silent connection would have taken.
    let served = tokio::time::timeout(Duration::from_secs(5), async {
        let lis = tls_client(&pki, serve, true).await.unwrap();
        let mut framed = Framed::new(lis.into_inner(), MllpCodec::new());
        framed.next().await
    });
    let frame = served
        .await
        .expect("the receiver is served while the silent connection is still open")
        .unwrap()
        .unwrap();
    assert!(matches!(&frame, MllpFrame::Message(p) if p.to_vec() == oru("S1", "LAB")));
    assert!(
        !router
            .log_text()
            .contains("did not complete the TLS handshake")
    );
    drop(silent);
}

/// In TLS 1.3 a client's handshake ends before the server has checked the client's
/// certificate; the refusal comes a round trip later. Messages that expect no ACK (MSH-15
/// NE) were written at once and counted delivered into the refused connection: lost. The
/// output now waits for that refusal, keeps the messages, and delivers them once it has
/// a certificate the server takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_the_routers_certificate_loses_no_unacknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let inp = free_port();
    let lis_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lis_port = lis_listener.local_addr().unwrap().port();
    let lis = TlsPeer::start(lis_listener, pki.acceptor(&pki.server));
    let config = format!(
        "[general]\nuseconnections = in, lis\nloglvl = debug\n\
         [in]\ntranstech = socket\ntransdir = in\nusehl7 = True\nqueuename = q\nport = {inp}\n\
         [lis]\ntranstech = socket\ntransdir = out\nusehl7 = True\nqueuename = q\n\
         createserversocket = False\nport = {lis_port}\nusetls = True\ntlsca = ca.pem\n\
         retrydelay = 0.05\nretrymaxdelay = 0.2\n"
    );
    let never = |id: &str| {
        format!("MSH|^~\\&|LAB|F|LIS|H|20240101||ORU^R01|{id}|P|2.5|||NE|NE\rPID|1\r").into_bytes()
    };
    let mut router = RouterProc::start(dir.path(), &config).await;
    // The router too sends no accept ACK for these (MSH-15 NE).
    let mut analyzer = client(inp).await.with_accept_ack_types(true);
    for id in ["NE1", "NE2"] {
        assert_eq!(
            analyzer.send(&never(id)).await.unwrap(),
            Reply::NotRequested
        );
    }
    wait_until("three refused handshakes", || {
        lis.failed_handshakes.lock().unwrap().len() >= 3
    })
    .await;
    let log = router.log_text();
    assert!(
        log.contains("it asks for a client certificate it trusts (tlscert, tlskey)"),
        "{log}"
    );
    assert!(!log.contains("delivered message"), "{log}");
    assert!(lis.received.lock().unwrap().is_empty());
    assert!(router.terminate(WAIT).success());

    // With the certificate the server wants, both messages arrive: none was lost.
    let config = config.replace(
        "tlsca = ca.pem\nretrydelay",
        "tlsca = ca.pem\ntlscert = client.pem\ntlskey = client.key\nretrydelay",
    );
    let _router = RouterProc::start(dir.path(), &config).await;
    wait_until("both messages at the LIS", || {
        lis.received.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(*lis.received.lock().unwrap(), [never("NE1"), never("NE2")]);
}

/// SIGHUP reads the TLS files again: connections opened afterwards get the renewed
/// certificate, one already open goes on, and files that cannot be used (a certificate
/// replaced before its key) leave the certificate in use, with an error naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_takes_renewed_certificates_and_keeps_the_old_ones_when_the_new_do_not_work() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let renewed_dir = dir.path().join("renewed");
    std::fs::create_dir(&renewed_dir).unwrap();
    let renewed = Pki::new(&renewed_dir);
    let port = free_port();
    let config = format!(
        "[general]\nuseconnections = in, files\nloglvl = info\n\
         [in]\ntranstech = socket\ntransdir = in\nusehl7 = True\nqueuename = q\nport = {port}\n\
         usetls = True\ntlscert = server.pem\ntlskey = server.key\n\
         [files]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let mut router = RouterProc::start(dir.path(), &config).await;
    let presented = |client: &MllpClient<tokio_rustls::client::TlsStream<TcpStream>>| {
        client.get_ref().get_ref().1.peer_certificates().unwrap()[0].clone()
    };

    let mut before = tls_client(&pki, port, false).await.unwrap();
    assert_eq!(presented(&before), pki.server.0);
    assert_acknowledges(before.send(&oru("OLD1", "LAB")).await.unwrap(), b"OLD1");

    // The renewed pair, put in place as certbot's deploy hook would, then SIGHUP.
    for file in ["server.pem", "server.key"] {
        std::fs::copy(renewed_dir.join(file), dir.path().join(file)).unwrap();
    }
    router.signal(rustix::process::Signal::HUP);
    wait_until("the reload line", || {
        router
            .log_text()
            .contains("SIGHUP: TLS files read again for in; new connections use them")
    })
    .await;
    let mut after = tls_client(&renewed, port, false).await.unwrap();
    assert_eq!(presented(&after), renewed.server.0);
    assert_acknowledges(after.send(&oru("NEW1", "LAB")).await.unwrap(), b"NEW1");
    // Trusting only the old CA (whose name the new one shares), a new client now refuses
    // the router.
    let refused = match tls_client(&pki, port, false).await {
        Err(e) => e.to_string(),
        Ok(mut c) => format!("{:?}", c.send(&oru("X", "LAB")).await),
    };
    assert!(refused.contains("invalid peer certificate"), "{refused}");
    // The connection opened before the reload goes on with its session.
    assert_acknowledges(before.send(&oru("OLD2", "LAB")).await.unwrap(), b"OLD2");

    // A certificate without its key (the old key is still there): refused, the renewed
    // pair stays in use.
    std::fs::copy(
        dir.path().join("impostor.pem"),
        dir.path().join("server.pem"),
    )
    .unwrap();
    router.signal(rustix::process::Signal::HUP);
    wait_until("the failed reload line", || {
        router
            .log_text()
            .contains("SIGHUP: [in] tlskey: does not go with tlscert: ")
    })
    .await;
    let log = router.log_text();
    assert!(log.contains("; keeping the certificates in use"), "{log}");
    let mut still = tls_client(&renewed, port, false).await.unwrap();
    assert_eq!(presented(&still), renewed.server.0);
    assert_acknowledges(still.send(&oru("NEW2", "LAB")).await.unwrap(), b"NEW2");

    let out = dir.path().join("out");
    wait_until("4 files", || files_in(&out).len() == 4).await;
    assert!(router.terminate(Duration::from_secs(10)).success());
}

/// `tlscrl` on a mutual-TLS input: a client certificate the CA has revoked is refused at the
/// handshake and nothing it sends is stored; a revocation list renewed on disk counts from
/// the next SIGHUP; one past its nextUpdate refuses every client of its CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_client_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    pki.write_crl("crl.pem", &[]);
    let port = free_port();
    let config = format!(
        "[general]\nuseconnections = in, files\nloglvl = info\n\
         [in]\ntranstech = socket\ntransdir = in\nusehl7 = True\nqueuename = q\nport = {port}\n\
         usetls = True\ntlscert = server.pem\ntlskey = server.key\ntlsca = ca.pem\n\
         tlscrl = crl.pem\n\
         [files]\ntranstech = file\ntransdir = out\nqueuename = q\nmessagedir = out\n"
    );
    let mut router = RouterProc::start(dir.path(), &config).await;
    let mut analyzer = tls_client(&pki, port, true).await.unwrap();
    assert_acknowledges(
        analyzer.send(&oru("BEFORE", "LAB")).await.unwrap(),
        b"BEFORE",
    );

    pki.write_crl("crl.pem", &["client"]);
    router.signal(rustix::process::Signal::HUP);
    wait_until("the reload line", || {
        router
            .log_text()
            .contains("SIGHUP: TLS files read again for in")
    })
    .await;
    let refused = match tls_client(&pki, port, true).await {
        Err(e) => e.to_string(),
        Ok(mut c) => format!("{:?}", c.send(&oru("REVOKED", "LAB")).await),
    };
    assert!(
        refused.contains("CertificateRevoked") || refused.contains("revoked"),
        "{refused}"
    );
    wait_until("the revocation line", || {
        router
            .log_text()
            .contains("(the client's certificate is revoked by a list in tlscrl)")
    })
    .await;

    // A list past its nextUpdate cannot tell what was revoked since: every client of that
    // CA is refused, with the date and what to do.
    pki.write_crl_valid_until("crl.pem", &[], (2025, 2, 1));
    router.signal(rustix::process::Signal::HUP);
    wait_until("the second reload line", || {
        router
            .log_text()
            .matches("SIGHUP: TLS files read again for in")
            .count()
            == 2
    })
    .await;
    let refused = match tls_client(&pki, port, true).await {
        Err(e) => e.to_string(),
        Ok(mut c) => format!("{:?}", c.send(&oru("EXPIRED", "LAB")).await),
    };
    assert!(
        refused.contains("UnknownCA") || refused.contains("unknown"),
        "{refused}"
    );
    wait_until("the expired-list line", || {
        router.log_text().contains(
            "(the revocation list in tlscrl from the CA that issued the client's certificate \
             is out of date (past its nextUpdate since 2025-02-01 00:00:00 UTC), so the \
             client is refused: put that CA's current CRL in the file and send the router \
             SIGHUP)",
        )
    })
    .await;

    let out = dir.path().join("out");
    wait_until("1 file", || files_in(&out).len() == 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        files_in(&out).len(),
        1,
        "only the message sent before the revocation"
    );
    assert!(router.terminate(Duration::from_secs(10)).success());
}
