//! TLS material named by a profile's `[tls]`: the client certificate the Connector presents
//! (mutual TLS) and the CAs it trusts for the partner's server certificate, read from the PEM
//! files their variables name and checked before a run; and for a mock partner that serves
//! TLS, a throwaway CA with a server and a client certificate, and the listener that asks for
//! the client's.
//!
//! A private key is read into memory to be used, never into a message, a report or `Debug`.

use crate::profile::TlsSection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why the TLS files a profile names cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The variable is not set.
    #[error(
        "tls.{key}: environment variable {variable} is not set (it must hold the path of {what})"
    )]
    NotSet {
        /// The profile key naming the variable.
        key: &'static str,
        /// The variable.
        variable: String,
        /// What the file holds.
        what: &'static str,
    },
    /// The file cannot be read.
    #[error("tls.{key}: {variable} names {path}, which cannot be read: {source}")]
    Unreadable {
        /// The profile key naming the variable.
        key: &'static str,
        /// The variable.
        variable: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is read but does not hold what it must.
    #[error("tls.{key}: {variable} names {path}, which {problem}")]
    Malformed {
        /// The profile key naming the variable.
        key: &'static str,
        /// The variable.
        variable: String,
        /// The file.
        path: PathBuf,
        /// What is wrong, beginning with a verb.
        problem: String,
    },
}

/// A file named by a variable: where it came from, for messages.
#[derive(Debug, Clone)]
struct Named {
    key: &'static str,
    variable: String,
    path: PathBuf,
}

impl Named {
    fn malformed(&self, problem: impl Into<String>) -> TlsError {
        TlsError::Malformed {
            key: self.key,
            variable: self.variable.clone(),
            path: self.path.clone(),
            problem: problem.into(),
        }
    }
}

/// What the Connector's HTTP client needs for TLS beyond the public roots: a client
/// certificate with its key, and CAs to trust. `Debug` shows where they came from only.
#[derive(Clone, Default)]
pub struct ClientTls {
    /// The client certificate chain and key, as one PEM text (what reqwest reads).
    identity_pem: Option<Arc<Vec<u8>>>,
    /// CA certificates to trust, DER.
    roots: Vec<CertificateDer<'static>>,
    /// Where each came from.
    sources: Vec<String>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("client_certificate", &self.identity_pem.is_some())
            .field("roots", &self.roots.len())
            .field("sources", &self.sources)
            .finish()
    }
}

impl ClientTls {
    /// No client certificate and no extra CA.
    pub fn none() -> ClientTls {
        ClientTls::default()
    }

    /// Whether a client certificate is presented.
    pub fn presents_certificate(&self) -> bool {
        self.identity_pem.is_some()
    }

    /// Reads and checks the files `tls` names, looking each variable up with `lookup`
    /// (normally the process environment): PEM certificates, a private key that belongs to
    /// the client certificate, CAs that parse.
    pub fn resolve(
        tls: Option<&TlsSection>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ClientTls, TlsError> {
        let Some(tls) = tls else {
            return Ok(ClientTls::none());
        };
        let named = |key: &'static str, variable: &Option<String>, what: &'static str| {
            let Some(variable) = variable.clone() else {
                return Ok(None);
            };
            match lookup(&variable).filter(|value| !value.trim().is_empty()) {
                Some(path) => Ok(Some(Named {
                    key,
                    variable,
                    path: PathBuf::from(path),
                })),
                None => Err(TlsError::NotSet {
                    key,
                    variable,
                    what,
                }),
            }
        };
        let cert = named(
            "client-cert-env",
            &tls.client_cert_env,
            "the client certificate, a PEM file",
        )?;
        let key = named(
            "client-key-env",
            &tls.client_key_env,
            "the client certificate's private key, a PEM file",
        )?;
        let ca = named(
            "ca-cert-env",
            &tls.ca_cert_env,
            "the CA certificates to trust, a PEM file",
        )?;
        let read = |named: &Named| {
            std::fs::read(&named.path).map_err(|source| TlsError::Unreadable {
                key: named.key,
                variable: named.variable.clone(),
                path: named.path.clone(),
                source,
            })
        };
        let mut out = ClientTls::none();
        if let (Some(cert), Some(key)) = (&cert, &key) {
            let cert_pem = read(cert)?;
            let key_pem = read(key)?;
            out.identity_pem = Some(Arc::new(identity(cert, &cert_pem, key, &key_pem)?));
            out.sources
                .push(format!("{}={}", cert.variable, cert.path.display()));
            out.sources
                .push(format!("{}={}", key.variable, key.path.display()));
        }
        if let Some(ca) = &ca {
            out.roots = roots(ca, &read(ca)?)?;
            out.sources
                .push(format!("{}={}", ca.variable, ca.path.display()));
        }
        Ok(out)
    }

    /// TLS material given as PEM text (a mock partner's own): a client certificate chain and
    /// its key, and CAs to trust.
    pub fn from_pem(
        identity_pem: Option<(&str, &str)>,
        ca_pem: Option<&str>,
    ) -> Result<ClientTls, TlsError> {
        let named = |key: &'static str| Named {
            key,
            variable: "(generated)".into(),
            path: PathBuf::from("(in memory)"),
        };
        let mut out = ClientTls::none();
        if let Some((cert, key)) = identity_pem {
            out.identity_pem = Some(Arc::new(identity(
                &named("client-cert-env"),
                cert.as_bytes(),
                &named("client-key-env"),
                key.as_bytes(),
            )?));
            out.sources.push("generated client certificate".into());
        }
        if let Some(ca) = ca_pem {
            out.roots = roots(&named("ca-cert-env"), ca.as_bytes())?;
            out.sources.push("generated CA".into());
        }
        Ok(out)
    }

    /// `builder` with the client certificate and the CAs added.
    pub fn configure(
        &self,
        mut builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder, String> {
        if let Some(pem) = &self.identity_pem {
            let identity = reqwest::Identity::from_pem(pem)
                .map_err(|error| format!("cannot use the client certificate: {error}"))?;
            builder = builder.identity(identity);
        }
        for root in &self.roots {
            let certificate = reqwest::Certificate::from_der(root)
                .map_err(|error| format!("cannot use a CA certificate: {error}"))?;
            builder = builder.add_root_certificate(certificate);
        }
        Ok(builder)
    }
}

fn certificates(named: &Named, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|error| named.malformed(format!("is not valid PEM: {error}")))?;
    if certificates.is_empty() {
        return Err(named.malformed("holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
    }
    Ok(certificates)
}

fn roots(named: &Named, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = certificates(named, pem)?;
    let mut store = rustls::RootCertStore::empty();
    for certificate in &certificates {
        store.add(certificate.clone()).map_err(|error| {
            named.malformed(format!("holds a certificate that cannot be used: {error}"))
        })?;
    }
    Ok(certificates)
}

/// The client certificate chain and its key as one PEM text, once both are known to be PEM
/// and to belong together.
fn identity(
    cert: &Named,
    cert_pem: &[u8],
    key: &Named,
    key_pem: &[u8],
) -> Result<Vec<u8>, TlsError> {
    let chain = certificates(cert, cert_pem)?;
    if String::from_utf8_lossy(key_pem).contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(key.malformed(
            "holds an encrypted private key; give the key unencrypted (PKCS#8, PKCS#1 or SEC1)",
        ));
    }
    // The key's own parse errors are not quoted: they could echo its content.
    let private = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
        key.malformed(
            "holds no PEM private key (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)",
        )
    })?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, private, &provider).map_err(
        |error| match error {
            rustls::Error::InconsistentKeys(_) => key.malformed(format!(
                "holds a private key that does not belong to the certificate in {} ({})",
                cert.path.display(),
                cert.variable
            )),
            rustls::Error::General(_) => {
                key.malformed("holds a private key of a kind that cannot be used")
            }
            other => cert.malformed(format!("holds a certificate that cannot be used: {other}")),
        },
    )?;
    let mut pem = cert_pem.to_vec();
    if !pem.ends_with(b"\n") {
        pem.push(b'\n');
    }
    pem.extend_from_slice(key_pem);
    Ok(pem)
}

/// A throwaway CA, a server certificate it signed for `localhost` and `127.0.0.1`, and a client
/// certificate it signed: what a mock partner serving TLS needs, and what reaches it.
#[derive(Clone)]
pub struct MockPki {
    /// The CA certificate (PEM).
    pub ca_pem: String,
    /// The server certificate (PEM).
    pub server_cert_pem: String,
    /// The server's private key (PEM).
    server_key_pem: String,
    /// The client certificate (PEM).
    pub client_cert_pem: String,
    /// The client's private key (PEM).
    client_key_pem: String,
}

impl fmt::Debug for MockPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MockPki(throwaway CA, server and client certificates)")
    }
}

/// Where [`MockPki::write_to`] put the files a client needs.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    /// The CA certificate: trust it for the server, and it signed the client certificate.
    pub ca: PathBuf,
    /// The client certificate.
    pub client_cert: PathBuf,
    /// The client's private key.
    pub client_key: PathBuf,
}

impl MockPki {
    /// Makes a new CA and the two certificates it signs.
    pub fn generate() -> Result<MockPki, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let failed =
            |error: rcgen::Error| format!("cannot make the mock partner's certificates: {error}");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "spoke mock partner CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().map_err(failed)?;
        let ca = ca_params.self_signed(&ca_key).map_err(failed)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>, common: &str, usage: ExtendedKeyUsagePurpose| {
            let mut params = CertificateParams::new(names).map_err(failed)?;
            params.distinguished_name.push(DnType::CommonName, common);
            params.extended_key_usages = vec![usage];
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            let key = KeyPair::generate().map_err(failed)?;
            let certificate = params.signed_by(&key, &issuer).map_err(failed)?;
            Ok::<_, String>((certificate.pem(), key.serialize_pem()))
        };
        let (server_cert_pem, server_key_pem) = leaf(
            vec!["localhost".into(), "127.0.0.1".into()],
            "spoke mock partner",
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let (client_cert_pem, client_key_pem) = leaf(
            Vec::new(),
            "spoke connector",
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        Ok(MockPki {
            ca_pem: ca.pem(),
            server_cert_pem,
            server_key_pem,
            client_cert_pem,
            client_key_pem,
        })
    }

    /// What a client needs to reach the mock: the CA to trust and, when `mutual`, the client
    /// certificate.
    pub fn client_tls(&self, mutual: bool) -> ClientTls {
        let identity =
            mutual.then_some((self.client_cert_pem.as_str(), self.client_key_pem.as_str()));
        ClientTls::from_pem(identity, Some(&self.ca_pem))
            .expect("the generated certificates are valid PEM that belongs together")
    }

    /// The server side: this server certificate and, when `mutual`, a client certificate
    /// signed by this CA required of every connection.
    pub fn server_tls(&self, mutual: bool) -> Result<ServerTls, String> {
        ServerTls::new(
            &self.server_cert_pem,
            &self.server_key_pem,
            mutual.then_some(self.ca_pem.as_str()),
        )
    }

    /// Writes the CA certificate and the client certificate and key into `dir` (the key
    /// readable by its owner only), for a client outside this process.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<PkiFiles> {
        std::fs::create_dir_all(dir)?;
        let files = PkiFiles {
            ca: dir.join("ca.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        };
        std::fs::write(&files.ca, &self.ca_pem)?;
        std::fs::write(&files.client_cert, &self.client_cert_pem)?;
        write_private(&files.client_key, &self.client_key_pem)?;
        Ok(files)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// A TLS server configuration: a certificate and, optionally, the CA every client certificate
/// must be signed by (then one is required).
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    mutual: bool,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_certificate_required", &self.mutual)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// A server presenting `cert_pem` (a chain, leaf first) with `key_pem`, requiring a client
    /// certificate signed by `client_ca_pem` when given.
    pub fn new(cert_pem: &str, key_pem: &str, client_ca_pem: Option<&str>) -> Result<Self, String> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|error| format!("the server certificate is not valid PEM: {error}"))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|_| "the server key is not a PEM private key".to_owned())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?;
        let builder = match client_ca_pem {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for certificate in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                    let certificate = certificate
                        .map_err(|error| format!("the client CA is not valid PEM: {error}"))?;
                    roots
                        .add(certificate)
                        .map_err(|error| format!("the client CA cannot be used: {error}"))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|error| format!("cannot check client certificates: {error}"))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|error| format!("the server certificate cannot be used: {error}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            mutual: client_ca_pem.is_some(),
        })
    }

    /// Whether every client must present a certificate.
    pub fn mutual(&self) -> bool {
        self.mutual
    }
}

/// How long a client has to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener handing axum only connections whose TLS handshake succeeded. Handshakes run
/// apart from accepting, so a client that never finishes one holds up no other.
pub struct TlsListener {
    local: SocketAddr,
    ready: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsListener")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl TlsListener {
    /// Serves TLS as `tls` says on connections to `listener`.
    pub fn new(listener: tokio::net::TcpListener, tls: &ServerTls) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
        let (sender, ready) = tokio::sync::mpsc::channel(64);
        let acceptor = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        // Out of file descriptors and the like: wait, as axum's own listener does.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    // A failed handshake (no client certificate, one from another CA) is the
                    // client's to see; the server goes on.
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        let _ = sender.send((stream, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener {
            local,
            ready,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The acceptor stopped: nothing will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificates_are_usable_by_both_sides() {
        let pki = MockPki::generate().unwrap();
        assert!(pki.client_tls(true).presents_certificate());
        assert!(!pki.client_tls(false).presents_certificate());
        assert!(pki.server_tls(true).unwrap().mutual());
        assert!(!format!("{pki:?}{:?}", pki.client_tls(true)).contains("PRIVATE KEY"));
    }

    #[test]
    fn a_key_of_another_certificate_is_named_with_both_files() {
        let one = MockPki::generate().unwrap();
        let other = MockPki::generate().unwrap();
        let error = ClientTls::from_pem(Some((&one.client_cert_pem, &other.client_key_pem)), None)
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("holds a private key that does not belong to the certificate"),
            "{error}"
        );
    }
}
