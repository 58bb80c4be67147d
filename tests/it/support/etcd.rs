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
}

impl Etcd {
    /// Starts etcd and waits until it answers.
    pub async fn start() -> Etcd {
        let (client, peer) = (free_port(), free_port());
        let mut etcd = Etcd {
            url: format!("http://127.0.0.1:{client}"),
            peer_url: format!("http://127.0.0.1:{peer}"),
            child: None,
            dir: TempDir::new("etcd"),
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
        let child = Command::new("etcd")
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
