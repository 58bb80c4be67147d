//! The floor under any proxy on this box: a byte relay with no HTTP at all.
//!
//! Each client connection gets its own upstream connection and bytes are
//! copied both ways (`copy_bidirectional`, 64 KiB buffers) on current-thread
//! runtimes, one per thread, the same runtime flavour as veer's workers. It
//! parses nothing, routes nothing, records nothing, so its CPU per request is
//! close to the syscall and loopback TCP cost that every proxy pays.
//! `benches/compare.sh` measures it next to veer, nginx and haproxy: a proxy
//! cannot be faster than this row.
//!
//! Usage: relay_floor LISTEN_ADDR UPSTREAM_ADDR [THREADS]
//! (e.g. 127.0.0.1:18091 127.0.0.1:18081 1). With several threads, each
//! accepts from the same listening socket.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

const BUF: usize = 64 * 1024;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (listen, upstream, threads) = match &args[..] {
        [l, u] => (l, u, "1"),
        [l, u, t] => (l, u, t.as_str()),
        _ => usage("expected LISTEN_ADDR UPSTREAM_ADDR [THREADS]"),
    };
    let parse = |s: &str| -> SocketAddr {
        s.parse()
            .unwrap_or_else(|e| usage(&format!("bad address {s:?}: {e}")))
    };
    let (listen, upstream) = (parse(listen), parse(upstream));
    let threads: usize = match threads.parse() {
        Ok(n) if n > 0 => n,
        _ => usage(&format!("bad thread count {threads:?}")),
    };

    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let mut handles = Vec::new();
    for _ in 0..threads {
        let listener = listener.try_clone()?;
        handles.push(std::thread::spawn(move || relay(listener, upstream)));
    }
    for handle in handles {
        handle.join().expect("relay thread panicked")?;
    }
    Ok(())
}

/// One thread: accept and relay on a current-thread runtime, forever.
fn relay(listener: std::net::TcpListener, upstream: SocketAddr) -> std::io::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = TcpListener::from_std(listener)?;
            loop {
                let (mut client, _) = listener.accept().await?;
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    // 64 KiB each way: a 64 KiB response moves in one read and
                    // one write, as many as hyper needs in veer (the 8 KiB
                    // default would make the relay slower than the proxies).
                    let _ = tokio::io::copy_bidirectional_with_sizes(
                        &mut client,
                        &mut server,
                        BUF,
                        BUF,
                    )
                    .await;
                });
            }
        })
}

fn usage(problem: &str) -> ! {
    eprintln!("relay_floor: {problem}\nusage: relay_floor LISTEN_ADDR UPSTREAM_ADDR [THREADS]");
    std::process::exit(2)
}
