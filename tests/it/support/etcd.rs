//! A real etcd (Debian's `etcd-server`) on 127.0.0.1 with random ports and
//! a temporary data directory, killed when dropped; it can be stopped and
//! started again on the same ports and data.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::admin::{free_port, TempDir};

pub struct Etcd {
    pub url: String,
    peer_url: String,
    child: Option<Child>,
    dir: TempDir,
    /// Server certificate, key and the CA clients must chain to (TLS with
    /// client certificates).
    tls: Option<[std::path::PathBuf; 3]>,
}

/// True when etcd can run here. Without it the fleet tests skip, unless
/// `CI` is set (CI installs `etcd-server`; there a missing etcd fails).
pub fn available() -> bool {
    let found = Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var_os("CI").is_some() {
        panic!("etcd is not installed (apt-get install etcd-server)");
    }
    if !found {
        eprintln!("etcd not installed: skipping (apt-get install etcd-server)");
    }
    found
}

impl Etcd {
    /// Starts etcd and waits until it answers.
    pub async fn start() -> Etcd {
        Etcd::start_with(None).await
    }

    /// Starts etcd serving TLS with `cert` and `key`, requiring client
    /// certificates that chain to `ca`. Clients in these tests use the
    /// replicas' config, not [`Etcd::client`].
    pub async fn start_tls(
        cert: &std::path::Path,
        key: &std::path::Path,
        ca: &std::path::Path,
    ) -> Etcd {
        Etcd::start_with(Some([cert.into(), key.into(), ca.into()])).await
    }

    async fn start_with(tls: Option<[std::path::PathBuf; 3]>) -> Etcd {
        let (client, peer) = (free_port(), free_port());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut etcd = Etcd {
            url: format!("{scheme}://127.0.0.1:{client}"),
            peer_url: format!("http://127.0.0.1:{peer}"),
            child: None,
            dir: TempDir::new("etcd"),
            tls,
        };
        etcd.restart().await;
        etcd
    }

    /// Kills etcd (SIGKILL); its data stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd on the same ports and data, and waits until it answers.
    pub async fn restart(&mut self) {
        self.stop();
        let mut command = Command::new("etcd");
        if let Some([cert, key, ca]) = &self.tls {
            command
                .arg("--cert-file")
                .arg(cert)
                .arg("--key-file")
                .arg(key)
                .arg("--trusted-ca-file")
                .arg(ca)
                .arg("--client-cert-auth");
        }
        let child = command
            .args(["--name", "test", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &self.url,
                "--advertise-client-urls",
                &self.url,
            ])
            .args(["--listen-peer-urls", &self.peer_url])
            .args(["--initial-advertise-peer-urls", &self.peer_url])
            .args(["--initial-cluster", &format!("test={}", self.peer_url)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd runs (apt-get install etcd-server)");
        self.child = Some(child);
        if self.tls.is_some() {
            // Ready once it accepts TCP; the test's replicas do the TLS.
            let addr = self.url.trim_start_matches("https://").to_string();
            let start = tokio::time::Instant::now();
            while tokio::net::TcpStream::connect(&addr).await.is_err() {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "etcd did not listen on {addr}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            return;
        }
        let start = tokio::time::Instant::now();
        loop {
            if let Ok(mut c) = self.client().await {
                if c.get("ping", None).await.is_ok() {
                    return;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "etcd did not answer on {}",
                self.url
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn client(&self) -> Result<etcd_client::Client, etcd_client::Error> {
        let options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(5));
        etcd_client::Client::connect([self.url.as_str()], Some(options)).await
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}
