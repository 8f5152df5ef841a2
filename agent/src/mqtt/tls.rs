//! The rustls client configuration for `mqtts://` brokers, with the ring
//! provider (aws-lc does not cross-compile cleanly to the Pi's musl target).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use super::MqttError;

/// Trusts the CAs of `ca_file` (PEM), or the system's roots when `None`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, MqttError> {
    let roots = match ca_file {
        Some(path) => roots_from_file(path)?,
        None => system_roots()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MqttError::Tls {
            path: "rustls".into(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, MqttError> {
    let tls_err = |reason: String| MqttError::Tls {
        path: path.display().to_string(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| tls_err(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| tls_err(format!("not a PEM certificate file: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| tls_err(format!("unusable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(tls_err("no CERTIFICATE block in the file".into()));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, MqttError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let reason = match found.errors.first() {
            Some(e) => format!("no usable system CA certificates ({e}); pass --mqtt-ca-file"),
            None => "no system CA certificates; pass --mqtt-ca-file".into(),
        };
        return Err(MqttError::Tls {
            path: "system roots".into(),
            reason,
        });
    }
    Ok(roots)
}
