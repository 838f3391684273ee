//! HTTPS for the Console API endpoint: rustls (with ring, as kube already links it) behind axum.
//!
//! The certificate comes from a [`CertificateSource`]. Today that is a PEM pair on disk (the chart
//! mounts the Secret the user names); the files are read again when they change, so a rotated Secret
//! (cert-manager) takes effect without a restart. A certificate the operator creates itself (the
//! reusable TLS module of the admission webhook) plugs in as another source: anything that can produce
//! a [`CertifiedKey`] can call [`CertStore::set`].

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self, ServerConfig,
        crypto::ring,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::{ClientHello, ResolvesServerCert},
        sign::CertifiedKey,
    },
    server::TlsStream,
};
use tracing::{debug, info, warn};

/// How often the PEM files are checked for a rotated certificate.
const RELOAD_EVERY: Duration = Duration::from_secs(30);
/// A client that has not finished its handshake by then is dropped (it holds no other client up:
/// each handshake runs on its own task).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the serving certificate comes from.
#[derive(Clone, Debug)]
pub enum CertificateSource {
    /// A PEM certificate chain and its PEM private key (PKCS#8, PKCS#1 or SEC1).
    PemFiles { cert: PathBuf, key: PathBuf },
    // Later: `OperatorIssued`, a certificate the operator creates and renews itself (ops::tls).
}

/// Why the certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadCertificateError {
    #[error("reading the certificate chain {path}: {source}")]
    ReadChain {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no certificate")]
    EmptyChain { path: PathBuf },
    #[error("reading the private key {path}: {source}")]
    ReadKey {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("the private key {path} is not usable: {source}")]
    UnusableKey {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

impl LoadCertificateError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ReadChain { .. } => "ReadChain",
            Self::EmptyChain { .. } => "EmptyChain",
            Self::ReadKey { .. } => "ReadKey",
            Self::UnusableKey { .. } => "UnusableKey",
        }
    }
}

/// Reads a PEM certificate chain and key into what rustls serves.
pub fn load_pem_files(cert: &Path, key: &Path) -> Result<CertifiedKey, LoadCertificateError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| LoadCertificateError::ReadChain {
            path: cert.into(),
            source,
        })?;
    if chain.is_empty() {
        return Err(LoadCertificateError::EmptyChain { path: cert.into() });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|source| LoadCertificateError::ReadKey {
        path: key.into(),
        source,
    })?;
    let signing = ring::default_provider()
        .key_provider
        .load_private_key(private)
        .map_err(|source| LoadCertificateError::UnusableKey {
            path: key.into(),
            source,
        })?;
    Ok(CertifiedKey::new(chain, signing))
}

/// The certificate being served; replaced in place on rotation.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    pub fn new(key: CertifiedKey) -> Arc<CertStore> {
        Arc::new(CertStore {
            current: RwLock::new(Arc::new(key)),
        })
    }

    pub fn set(&self, key: CertifiedKey) {
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(key);
        }
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|key| Arc::clone(&key))
    }
}

/// Loads the source, and keeps it current for as long as the process runs.
pub async fn certificate(source: &CertificateSource) -> Result<Arc<CertStore>, LoadCertificateError> {
    match source {
        CertificateSource::PemFiles { cert, key } => {
            let store = CertStore::new(load_pem_files(cert, key)?);
            tokio::spawn(reload_pem_files(Arc::clone(&store), cert.clone(), key.clone()));
            Ok(store)
        }
    }
}

/// Reads the files again when their bytes change (a mounted Secret is replaced through a symlink, so
/// modification times are not reliable); a broken new pair is logged and the old one kept.
async fn reload_pem_files(store: Arc<CertStore>, cert: PathBuf, key: PathBuf) {
    let read = |cert: &Path, key: &Path| (std::fs::read(cert).ok(), std::fs::read(key).ok());
    let mut seen = read(&cert, &key);
    loop {
        tokio::time::sleep(RELOAD_EVERY).await;
        let now = read(&cert, &key);
        if now == seen {
            continue;
        }
        match load_pem_files(&cert, &key) {
            Ok(loaded) => {
                store.set(loaded);
                info!(cert = %cert.display(), "serving the rotated certificate");
            }
            Err(error) => warn!(%error, reason = error.reason(), "keeping the previous certificate"),
        }
        seen = now;
    }
}

/// A TLS listener for `axum::serve`: TCP connections are accepted on one task, and each handshake
/// runs on its own, so a slow or silent client delays nobody.
pub struct TlsListener {
    accepted: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub async fn bind(addr: SocketAddr, certs: Arc<CertStore>) -> Result<TlsListener, BindError> {
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|source| BindError::Bind { addr, source })?;
        let local = tcp
            .local_addr()
            .map_err(|source| BindError::Bind { addr, source })?;
        let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(BindError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(certs);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (sender, accepted) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        warn!(%error, "accepting a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = sender.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { accepted, local })
    }
}

/// Why the HTTPS listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("building the TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(connection) => connection,
            // The accepting task never ends on its own; if it did, there is nothing left to serve.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
