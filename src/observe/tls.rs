//! TLS counters: failed handshakes per listener (bounded: listener names
//! come from the config) and certificate reloads by result.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct TlsCounters {
    /// Per listener, in the order listeners first asked.
    handshake_errors: Mutex<Vec<(String, Arc<AtomicU64>)>>,
    /// Certificate reloads: [ok, error].
    cert_reloads: [AtomicU64; 2],
}

impl TlsCounters {
    /// The failed-handshake counter of `listener`, created on first use
    /// and resolved once per listener, not per connection.
    pub fn handshake_errors(&self, listener: &str) -> Arc<AtomicU64> {
        let mut all = self.handshake_errors.lock().unwrap();
        if let Some((_, n)) = all.iter().find(|(name, _)| name == listener) {
            return n.clone();
        }
        let n = Arc::new(AtomicU64::new(0));
        all.push((listener.to_owned(), n.clone()));
        n
    }

    pub fn record_cert_reload(&self, ok: bool) {
        self.cert_reloads[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
    }

    /// Certificate reloads so far: (ok, error).
    pub fn cert_reloads(&self) -> (u64, u64) {
        let [ok, err] = &self.cert_reloads;
        (ok.load(Ordering::Relaxed), err.load(Ordering::Relaxed))
    }

    /// Appends the TLS metrics to a Prometheus exposition.
    pub fn render(&self, out: &mut String, esc: impl Fn(&str) -> String) {
        let _ = writeln!(
            out,
            "# HELP veer_tls_handshake_errors_total TLS handshakes that failed or timed out, by listener.\n\
             # TYPE veer_tls_handshake_errors_total counter"
        );
        for (listener, n) in self.handshake_errors.lock().unwrap().iter() {
            let _ = writeln!(
                out,
                "veer_tls_handshake_errors_total{{listener=\"{}\"}} {}",
                esc(listener),
                n.load(Ordering::Relaxed)
            );
        }
        let (ok, error) = self.cert_reloads();
        let _ = writeln!(
            out,
            "# HELP veer_tls_cert_reloads_total Listener certificate reloads, by result.\n\
             # TYPE veer_tls_cert_reloads_total counter\n\
             veer_tls_cert_reloads_total{{result=\"ok\"}} {ok}\n\
             veer_tls_cert_reloads_total{{result=\"error\"}} {error}"
        );
    }
}
