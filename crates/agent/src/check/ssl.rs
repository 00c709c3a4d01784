//! SSL_GET: HTTP_GET ([`super::http`]) over TLS (rustls, TLS 1.2 and 1.3).
//!
//! Certificate checking follows keepalived 2.2.7, which sets up OpenSSL without
//! `SSL_VERIFY_PEER`: the real server's certificate is not verified (a self-signed or
//! expired certificate, or another name, is still up); the handshake's signatures are.
//! The global `SSL` block's `certificate` and `key` are presented as a client certificate;
//! its `ca` is accepted and, as in keepalived, verifies nothing. With `enable_sni` the
//! virtual host is sent as the server name.

use super::CheckError;
use crate::keepalived::config::SslConf;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Accepts any certificate, checks the handshake signatures (keepalived 2.2.7 semantics).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> CheckError {
    CheckError::Tls(format!("{what}: {e}"))
}

fn build(client: Option<&SslConf>) -> Result<Arc<ClientConfig>, CheckError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("protocol versions", e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)));
    let config = match client.and_then(|c| c.certificate.as_deref().zip(c.key.as_deref())) {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| tls_err(cert, e))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| tls_err(key, e))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| tls_err("client certificate", e))?
        }
    };
    Ok(Arc::new(config))
}

/// The TLS client configuration for the global `SSL` block (none: no client
/// certificate). Built once per certificate and key, and again when either file changes
/// (a reload or a renewal sees the new ones) rather than read on every probe.
pub fn client_config(client: Option<&SslConf>) -> Result<Arc<ClientConfig>, CheckError> {
    type Key = (String, String);
    type Stamp = (Option<SystemTime>, Option<SystemTime>);
    type Cache = Mutex<HashMap<Key, (Stamp, Arc<ClientConfig>)>>;
    static PLAIN: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    static WITH_CERT: OnceLock<Cache> = OnceLock::new();
    let Some((cert, key)) = client.and_then(|c| c.certificate.as_deref().zip(c.key.as_deref())) else {
        if let Some(c) = PLAIN.get() {
            return Ok(c.clone());
        }
        let c = build(None)?;
        return Ok(PLAIN.get_or_init(|| c).clone());
    };
    let modified = |p: &str| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let stamp = (modified(cert), modified(key));
    let cache = WITH_CERT.get_or_init(Default::default);
    let k = (cert.to_string(), key.to_string());
    if let Some((s, c)) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&k) {
        if *s == stamp {
            return Ok(c.clone());
        }
    }
    let c = build(client)?;
    cache.lock().unwrap_or_else(|e| e.into_inner()).insert(k, (stamp, c.clone()));
    Ok(c)
}

/// The TLS handshake over a connected `s`; `sni`: the name to send (none: no SNI).
pub async fn handshake(
    s: TcpStream,
    target: SocketAddr,
    config: &Arc<ClientConfig>,
    sni: Option<&str>,
) -> Result<TlsStream<TcpStream>, CheckError> {
    // An IP address as server name sends no SNI (RFC 6066); so does a name that is not a
    // DNS name.
    let name = sni
        .and_then(|n| ServerName::try_from(n.to_string()).ok())
        .filter(|n| matches!(n, ServerName::DnsName(_)))
        .unwrap_or(ServerName::IpAddress(target.ip().into()));
    tokio_rustls::TlsConnector::from(config.clone()).connect(name, s).await.map_err(|e| tls_err("handshake", e))
}
