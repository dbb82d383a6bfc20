//! HTTPS served directly with rustls, when `server.tls.cert` and `server.tls.key` are set.
//!
//! - ALPN offers `h2` and `http/1.1` (RFC 7301); the connection is then served by the same axum
//!   router as plain HTTP, HTTP/1.1 or HTTP/2 as negotiated.
//! - The certificate and key live behind a [`CertStore`] that every handshake reads, so SIGHUP can
//!   swap them without dropping a connection: connections keep the certificate they shook hands
//!   with, new ones get the new pair. A pair that does not load (unreadable, not PEM, key not the
//!   certificate's) is logged and the current one stays in use.
//! - Handshakes run in their own tasks with a time limit, so a slow or silent client cannot hold up
//!   the accept loop; at most `MAX_HANDSHAKES` are in progress at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A client that has not finished its handshake after this long is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait in the kernel's accept queue.
const MAX_HANDSHAKES: usize = 1024;

/// The certificate chain and key handed to every new handshake.
#[derive(Debug)]
pub struct CertStore {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    /// Loads the pair, or says which file is wrong and why.
    pub fn open(cert: &Path, key: &Path) -> anyhow::Result<Arc<Self>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pair = load(cert, key, &provider)?;
        Ok(Arc::new(Self {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            current: RwLock::new(Arc::new(pair)),
        }))
    }

    /// Reads both files again. On success new handshakes use the new pair; on failure the current
    /// pair stays and the error says why.
    pub fn reload(&self) -> anyhow::Result<String> {
        let pair = load(&self.cert, &self.key, &self.provider)?;
        let fingerprint = fingerprint(&pair);
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(pair),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(pair),
        }
        Ok(fingerprint)
    }

    /// SHA-256 of the leaf certificate now in use, in hex (what `openssl x509 -fingerprint
    /// -sha256` prints, without the colons).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.pair())
    }

    fn pair(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The rustls configuration: TLS 1.2 and 1.3, no client certificates, ALPN h2 then http/1.1.
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .context("server.tls: no usable TLS protocol version")?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.pair())
    }
}

fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("server.tls.cert: cannot read {}: {e}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!(
            "server.tls.cert: {} holds no PEM certificate",
            cert.display()
        );
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("server.tls.key: cannot read {}: {e}", key.display()))?;
    CertifiedKey::from_der(chain, private, provider).map_err(|e| {
        anyhow::anyhow!(
            "server.tls.key: {} does not go with {}: {e}",
            key.display(),
            cert.display()
        )
    })
}

fn fingerprint(pair: &CertifiedKey) -> String {
    pair.cert.first().map_or_else(String::new, |leaf| {
        crate::crypto::hex(&Sha256::digest(leaf.as_ref()))
    })
}

/// Reloads `store` on every SIGHUP until the process ends.
pub fn reload_on_sighup(store: Arc<CertStore>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP: the TLS certificate will not be reloaded");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            // File reads and key parsing are blocking work.
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.reload()).await {
                Ok(Ok(fingerprint)) => {
                    tracing::info!(sha256 = %fingerprint, "SIGHUP: TLS certificate reloaded");
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; the current one stays in use");
                }
                Err(e) => tracing::error!(error = %e, "SIGHUP: TLS reload task failed"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = store;
}

/// Accepted TLS connections, handshake done, for `axum::serve`.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    /// Starts accepting on `tcp`. Stops when the listener is dropped.
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let permit = tokio::select! {
                    () = tx.closed() => return,
                    permit = handshakes.clone().acquire_owned() => match permit {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                };
                let (stream, peer) = tokio::select! {
                    () = tx.closed() => return,
                    accepted = tcp.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // As axum's own loop: out of file descriptors and the like pass.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let _ = stream.set_nodelay(true);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept task only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
