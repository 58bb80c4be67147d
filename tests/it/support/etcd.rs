//! A real etcd (Debian's `etcd-server`) on 127.0.0.1 with random ports and
//! a temporary data directory, killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::admin::{free_port, TempDir};

pub struct Etcd {
    pub url: String,
    child: Child,
    _dir: TempDir,
}

impl Etcd {
    /// Starts etcd and waits until it answers.
    pub async fn start() -> Etcd {
        let dir = TempDir::new("etcd");
        let (client, peer) = (free_port(), free_port());
        let url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new("etcd")
            .args(["--name", "test", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("test={peer_url}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd runs (apt-get install etcd-server)");
        let etcd = Etcd {
            url,
            child,
            _dir: dir,
        };
        let start = tokio::time::Instant::now();
        loop {
            if let Ok(mut c) = etcd.client().await {
                if c.get("ping", None).await.is_ok() {
                    return etcd;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "etcd did not answer on {}",
                etcd.url
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
