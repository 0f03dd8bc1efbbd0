//! The rustls client configuration of every connection the runner makes
//! (the link, `check`, the HTTP client): the ring provider only (no
//! aws-lc-rs, builds for musl; rust-stack.md §1), Mozilla's roots compiled
//! in (a `FROM scratch` image has no CA files), plus every certificate of
//! the `ADOS_CA_CERT` PEM file for a control plane behind a private CA.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// Build the client configuration.
///
/// # Errors
/// `ADOS_CA_CERT` cannot be read, holds no certificate, or holds a
/// certificate rustls refuses; the message names the variable and the file.
pub fn client_config(ca_cert: Option<&Path>) -> io::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_cert {
        let bad = |what: String| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "ADOS_CA_CERT ({}): {what}; point it at a PEM file of CA certificates",
                    path.display()
                ),
            )
        };
        let iter =
            CertificateDer::pem_file_iter(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let mut added = 0;
        for cert in iter {
            let cert = cert.map_err(|e| bad(format!("invalid PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("a certificate is not a usable CA: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad("no CERTIFICATE block found".into()));
        }
        log::debug!(
            "added {} from ADOS_CA_CERT {}",
            crate::words::count(added, "CA certificate"),
            path.display()
        );
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| io::Error::other(format!("TLS setup failed: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_with_public_roots_only() {
        assert!(client_config(None).is_ok());
    }

    #[test]
    fn a_missing_or_empty_ca_file_names_the_variable() {
        let e = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(e.to_string().contains("ADOS_CA_CERT"), "{e}");
        let dir = std::env::temp_dir().join(format!("ados-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a pem\n").unwrap();
        let e = client_config(Some(&empty)).unwrap_err();
        assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
