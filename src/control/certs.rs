//! Certificate reloads: when a file in a certificate directory changes,
//! every TLS listener re-reads its certificates. New ones that fail to
//! load are rejected (logged, counted, recorded as an event) and the old
//! ones keep serving.

use super::events::EventKind;
use super::Control;

impl Control {
    /// Re-reads every listener's certificates now. Returns false when some
    /// listener's new material was rejected.
    pub async fn reload_certs(&self) -> bool {
        let inner = self.inner.lock().await;
        let mut ok = true;
        for (listener, result) in inner.listeners.reload_certs() {
            match result {
                Ok(false) => {}
                Ok(true) => {
                    self.telemetry.tls.record_cert_reload(true);
                    tracing::info!(%listener, "TLS certificates reloaded");
                    let message = format!("listener {listener:?}: certificates reloaded");
                    self.events.record(EventKind::CertsReloaded, None, message);
                }
                Err(e) => {
                    ok = false;
                    self.telemetry.tls.record_cert_reload(false);
                    tracing::error!(error = %e, "certificate reload rejected, old certificates keep serving");
                    let message =
                        format!("certificate reload rejected, old certificates keep serving: {e}");
                    self.events
                        .record(EventKind::CertReloadError, None, message);
                }
            }
        }
        ok
    }
}
