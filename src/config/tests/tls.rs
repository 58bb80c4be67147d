//! `tls` on listeners (one cert, several by SNI, client CA, handshake
//! timeout) and `[pool.tls]` with `https://` endpoints.

use std::path::Path;
use std::time::Duration;

use super::{fails, ok, LISTENER, POOLS};
use crate::config::parse;

const TLS_LISTENER: &str = "[[listener]]\nname = \"tls\"\nlisten = \"127.0.0.1:8443\"\n";

#[test]
fn several_certificates_by_sni() {
    let text = format!(
        "{LISTENER}{TLS_LISTENER}[listener.tls]\nclient_ca = \"ca.pem\"\nhandshake_timeout = \"3s\"\n\
         [[listener.tls.cert]]\nnames = [\"App.Example.com\", \"*.example.com\"]\ncert = \"a.pem\"\nkey = \"a.key\"\n\
         [[listener.tls.cert]]\ncert = \"b.pem\"\nkey = \"b.key\"\n{POOLS}"
    );
    let c = parse(&text, Path::new("/etc/veer/veer.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.listeners[0].tls.is_none());
    let tls = c.listeners[1].tls.as_ref().unwrap();
    assert_eq!(tls.certs.len(), 2);
    assert_eq!(tls.certs[0].names, ["app.example.com", "*.example.com"]);
    assert!(tls.certs[1].names.is_empty());
    assert_eq!(tls.certs[1].key, Path::new("/etc/veer/b.key"));
    assert_eq!(
        tls.client_ca.as_deref(),
        Some(Path::new("/etc/veer/ca.pem"))
    );
    assert_eq!(tls.handshake_timeout, Duration::from_secs(3));
}

#[test]
fn listener_tls_mistakes() {
    let text = |tls: &str| format!("{TLS_LISTENER}{tls}\n");
    fails(
        &text("tls = { cert = \"a.pem\" }"),
        "tls = {",
        "listener \"tls\".tls.cert",
        "needs key",
    );
    fails(
        &text("[listener.tls]\nkey = \"k\"\n[[listener.tls.cert]]\ncert = \"a\"\nkey = \"b\""),
        "key = \"k\"",
        "listener \"tls\".tls.key",
        "its own key",
    );
    fails(
        &text(
            "[listener.tls]\n[[listener.tls.cert]]\nnames = [\"a b\"]\ncert = \"a\"\nkey = \"b\"",
        ),
        "names",
        "listener \"tls\".tls.cert[0].names",
        "not a valid host",
    );
    fails(
        &text("tls = { cert = \"a\", key = \"b\", handshake_timeout = \"0s\" }"),
        "tls = {",
        "listener \"tls\".tls.handshake_timeout",
        "longer than 0s",
    );
}

#[test]
fn https_endpoints_and_pool_tls() {
    let c = ok(
        "[[pool]]\nname = \"api\"\nendpoints = [\"https://api.internal:8443\", \"10.0.0.1:80\"]\n\
                [pool.tls]\nca = \"ca.pem\"\nserver_name = \"API.internal\"\nh2 = true\n",
    );
    let api = c.pools.iter().find(|p| p.name == "api").unwrap();
    assert!(api.endpoints[0].tls && !api.endpoints[1].tls);
    assert_eq!(api.endpoints[0].authority, "api.internal:8443");
    assert_eq!(api.tls.ca.as_deref(), Some(Path::new("/etc/veer/ca.pem")));
    assert_eq!(api.tls.server_name.as_deref(), Some("api.internal"));
    assert!(api.tls.h2);
    fails(
        "[[pool]]\nname = \"api\"\nendpoints = [\"10.0.0.1:80\"]\n[pool.tls]\nh2 = true\n",
        "[pool.tls]",
        "pool \"api\".tls",
        "no endpoint is written https://",
    );
}
