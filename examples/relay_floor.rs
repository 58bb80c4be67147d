//! The floor under any proxy on this box: a byte relay with no HTTP at all.
//!
//! Each client connection gets its own upstream connection and bytes are
//! copied both ways (`copy_bidirectional`, 64 KiB buffers) on one
//! current-thread runtime, the same runtime flavour as one veer worker. It
//! parses nothing, routes nothing, records nothing, so its CPU per request is
//! close to the syscall and loopback TCP cost that every proxy pays.
//! `benches/compare.sh` measures it next to veer, nginx and haproxy: a proxy
//! cannot be faster than this row.
//!
//! Usage: relay_floor LISTEN_ADDR UPSTREAM_ADDR   (e.g. 127.0.0.1:18091 127.0.0.1:18081)

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

const BUF: usize = 64 * 1024;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: relay_floor LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(2);
    };
    let parse = |s: &str| -> SocketAddr {
        s.parse().unwrap_or_else(|e| {
            eprintln!("relay_floor: bad address {s:?}: {e}");
            std::process::exit(2)
        })
    };
    let (listen, upstream) = (parse(&listen), parse(&upstream));

    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = TcpListener::bind(listen).await?;
            loop {
                let (mut client, _) = listener.accept().await?;
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    // 64 KiB each way: a 64 KiB response moves in one read and one
                    // write, as many as hyper needs in veer (the 8 KiB default
                    // would make the relay slower than the proxies it floors).
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
