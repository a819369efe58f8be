//! The hyper peer server: hyper 0.14's `Server` on Tokio's current-thread runtime (one
//! thread runs the accept loop and every connection; run.sh also pins it to one CPU).
//!
//!     hyper-server --port PORT
//!
//! GET / answers "Hello, World!" (text/plain), GET /4k answers 4096 bytes of 'a'; any
//! other path is a 404, any other method a 405. HTTP/1.1 only, keep-alive on (hyper's
//! default), TCP_NODELAY on accepted sockets (as Go's net/http sets it). Prints
//! `listening on ADDR` once bound.
use std::convert::Infallible;
use std::net::SocketAddr;

use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::{make_service_fn, service_fn};
use hyper::{Body, Method, Request, Response, Server, StatusCode};

static HELLO: &[u8] = b"Hello, World!";
static FOUR_K: [u8; 4096] = [b'a'; 4096];

async fn route(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let body: &'static [u8] = match req.uri().path() {
        "/" => HELLO,
        "/4k" => &FOUR_K,
        _ => return Ok(status(StatusCode::NOT_FOUND)),
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(status(StatusCode::METHOD_NOT_ALLOWED));
    }
    let mut resp = Response::new(Body::from(Bytes::from_static(body)));
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

fn status(code: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = code;
    resp
}

fn main() {
    let mut port: u16 = 8080;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| usage()),
            _ => usage(),
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let builder = match Server::try_bind(&addr) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("hyper-server: {e}");
                std::process::exit(1);
            }
        };
        let make = make_service_fn(|_conn| async { Ok::<_, Infallible>(service_fn(route)) });
        let server = builder.http1_only(true).tcp_nodelay(true).serve(make);
        println!("listening on {}", server.local_addr());
        if let Err(e) = server.await {
            eprintln!("hyper-server: {e}");
            std::process::exit(1);
        }
    });
}

fn usage() -> ! {
    eprintln!("usage: hyper-server [--port PORT]");
    std::process::exit(2);
}
