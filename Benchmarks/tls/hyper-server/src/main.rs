//! The hyper HTTPS peer server: hyper 0.14's HTTP/1.1 connections over tokio-rustls 0.23
//! (rustls 0.20), on Tokio's current-thread runtime (one thread runs the accept loop,
//! every handshake and every connection; run.sh also pins it to one CPU).
//!
//!     hyper-tls-server --port PORT --cert leaf.pem --key leaf.key
//!
//! GET / answers "Hello, World!" (text/plain); any other path is a 404, any other method
//! a 405. rustls's safe defaults: TLS 1.2 and 1.3 (1.3 preferred), its cipher suites and
//! key exchange groups, its default in-memory session store; ALPN offers http/1.1 only.
//! Keep-alive on (hyper's default), TCP_NODELAY on accepted sockets (as Go's net/http
//! sets it). The handshake runs in each connection's task, not in the accept loop.
//! Prints `listening on ADDR` once bound.
use std::convert::Infallible;
use std::fs::File;
use std::io::BufReader;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::Http;
use hyper::service::service_fn;
use hyper::{Body, Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio_rustls::rustls::{self, Certificate, PrivateKey};
use tokio_rustls::TlsAcceptor;

static HELLO: &[u8] = b"Hello, World!";

async fn route(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    if req.uri().path() != "/" {
        return Ok(status(StatusCode::NOT_FOUND));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(status(StatusCode::METHOD_NOT_ALLOWED));
    }
    let mut resp = Response::new(Body::from(Bytes::from_static(HELLO)));
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

fn status(code: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = code;
    resp
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("hyper-tls-server: {what}: {e}");
    std::process::exit(1);
}

fn load_config(cert_path: &str, key_path: &str) -> rustls::ServerConfig {
    let mut rd = BufReader::new(File::open(cert_path).unwrap_or_else(|e| fail(cert_path, e)));
    let certs: Vec<Certificate> = rustls_pemfile::certs(&mut rd)
        .unwrap_or_else(|e| fail(cert_path, e))
        .into_iter()
        .map(Certificate)
        .collect();
    if certs.is_empty() {
        fail(cert_path, "no certificate");
    }
    let mut rd = BufReader::new(File::open(key_path).unwrap_or_else(|e| fail(key_path, e)));
    let key = loop {
        match rustls_pemfile::read_one(&mut rd).unwrap_or_else(|e| fail(key_path, e)) {
            Some(rustls_pemfile::Item::PKCS8Key(k))
            | Some(rustls_pemfile::Item::ECKey(k))
            | Some(rustls_pemfile::Item::RSAKey(k)) => break PrivateKey(k),
            Some(_) => continue,
            None => fail(key_path, "no private key"),
        }
    };
    let mut config = rustls::ServerConfig::builder()
        .with_safe_defaults()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap_or_else(|e| fail("certificate/key", e));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

fn main() {
    let mut port: u16 = 8443;
    let (mut cert, mut key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| usage()),
            "--cert" => cert = Some(args.next().unwrap_or_else(|| usage())),
            "--key" => key = Some(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    let (Some(cert), Some(key)) = (cert, key) else { usage() };
    let acceptor = TlsAcceptor::from(Arc::new(load_config(&cert, &key)));

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = TcpListener::bind(addr).await.unwrap_or_else(|e| fail("bind", e));
        println!("listening on {}", listener.local_addr().unwrap_or(addr));
        let mut http = Http::new();
        http.http1_only(true);
        loop {
            let (tcp, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and the like: say so, back off briefly, keep serving.
                    eprintln!("hyper-tls-server: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let http = http.clone();
            tokio::spawn(async move {
                // A client that goes away mid-handshake or mid-request is not an error here.
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = http.serve_connection(tls, service_fn(route)).await;
                }
            });
        }
    });
}

fn usage() -> ! {
    eprintln!("usage: hyper-tls-server --port PORT --cert FILE --key FILE");
    std::process::exit(2);
}
