//! gRPC-aware errors: a gRPC request veer fails itself gets a
//! trailers-only response (HTTP 200, `grpc-status`, `grpc-message`), over
//! h2c; other requests keep their plain statuses.

use http::Request;

use crate::support::*;

#[tokio::test]
async fn grpc_requests_get_grpc_statuses() {
    let routes =
        "[[route]]\nname = \"app\"\npath_prefix = \"/svc.Dead/\"\npool = \"dead\"\nretries = 0\n";
    let proxy = Proxy::start(&config(&[("dead", &[dead_addr().await])], routes)).await;
    let client = h2c_client();
    let call = |path: &str, grpc: bool| {
        let mut req = Request::post(proxy.url(path));
        if grpc {
            req = req
                .header("content-type", "application/grpc+proto")
                .header("te", "trailers");
        }
        req.body(empty()).unwrap()
    };
    let cases = [("/svc.Dead/Call", "14"), ("/svc.Missing/Call", "12")];
    for (path, code) in cases {
        let (status, headers, body) = send(&client, call(path, true)).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers["grpc-status"], code, "{path}");
        assert!(headers.contains_key("grpc-message"), "{path}");
        assert_eq!(headers["content-type"], "application/grpc");
        assert!(body.is_empty());
    }
    let (status, headers, _) = send(&client, call("/svc.Dead/Call", false)).await;
    assert_eq!(status, 502);
    assert!(!headers.contains_key("grpc-status"));
}
