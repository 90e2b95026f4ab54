//! The edge answers native gRPC without a delayed-ACK stall: one call at a time from a plain
//! HTTP/2 client (not tonic, whose own TCP settings hid the stall) takes milliseconds, not
//! the 40 ms floor an edge without TCP_NODELAY imposes.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::harness::TestPlatform;
use crate::platform_tests;

platform_tests!(one_grpc_call_at_a_time_through_the_edge_does_not_stall);

async fn one_grpc_call_at_a_time_through_the_edge_does_not_stall(platform: &TestPlatform) {
    // A client socket with Nagle and delayed ACKs as the kernel sets them, as h2load's or
    // grpc-go's are.
    let tcp = tokio::net::TcpStream::connect(platform.address("gateway")).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let mut elapsed = Vec::new();
    for _ in 0..21 {
        let request = http::Request::post(format!(
            "http://{}/complianceiq.auth.v1.AuthService/GetJwks",
            platform.address("gateway")
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
        let started = Instant::now();
        let (response, mut body) = client.send_request(request, false).unwrap();
        // An empty GetJwksRequest: an uncompressed frame of length 0.
        body.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), true).unwrap();
        let response = tokio::time::timeout(Duration::from_secs(10), response).await.unwrap().unwrap();
        let mut body = response.into_body();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        let trailers = body.trailers().await.unwrap().expect("gRPC trailers");
        assert_eq!(trailers.get("grpc-status").map(|v| v.to_str().unwrap()), Some("0"), "{trailers:?}");
        elapsed.push(started.elapsed());
        client = client.ready().await.unwrap();
    }
    elapsed.sort();
    let median = elapsed[elapsed.len() / 2];
    // Generous for a debug build on a busy CI machine; the stall this guards against is 40 ms
    // on every call.
    assert!(median < Duration::from_millis(20), "median {median:?} of {elapsed:?}");
}
