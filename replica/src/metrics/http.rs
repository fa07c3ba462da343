//! The metrics endpoint's HTTP server: `GET /metrics` answered with the registry's text,
//! anything else with a short error, every connection closed after one answer. One thread
//! serves one connection at a time; a request is bounded in size ([`MAX_REQUEST_BYTES`]) and
//! time ([`IO_TIMEOUT`]), so a client that sends garbage or nothing costs at most that and
//! delays the next scrape by at most two timeouts. A scraper (Prometheus every 15 s or so)
//! needs no more. Not pure: sockets and a thread.
//!
//! The endpoint is opt-in (`metrics_listen`) and unauthenticated: bind it to loopback or a
//! management network (docs/SECURITY.md, "Metrics").

use prometheus_client::registry::Registry;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Largest request head read, bytes (8 KiB): a scraper's request is a few hundred.
pub const MAX_REQUEST_BYTES: usize = 8192;
/// How long one connection may take to send its request or read the answer (2 s).
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// The content type of the OpenMetrics text format, which Prometheus negotiates and reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Metrics,
    NotFound,
    /// Not GET (or HEAD).
    BadMethod,
    /// Not HTTP at all, or cut short.
    BadRequest,
}

/// Parses a request head (pure): its request line decides.
pub fn route(head: &[u8]) -> Route {
    let Some(line) = head.split(|&b| b == b'\n').next() else {
        return Route::BadRequest;
    };
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    if method != "GET" && method != "HEAD" {
        return Route::BadMethod;
    }
    let path = target.split('?').next().unwrap_or_default();
    match path {
        "/metrics" | "/" => Route::Metrics,
        _ => Route::NotFound,
    }
}

/// Binds `listen` and serves `registry` on a thread named "metrics"; returns the bound
/// address.
pub fn start(listen: SocketAddr, registry: Registry) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(listen)?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        if let Err(e) = serve(stream, &registry) {
                            log::debug!("metrics request: {e}");
                        }
                    }
                    Err(e) => {
                        log::warn!("metrics accept: {e}");
                        // Out of descriptors, most likely: do not spin.
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
    Ok(addr)
}

fn serve(mut stream: TcpStream, registry: &Registry) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let head_only = head.starts_with(b"HEAD ");
    let (status, content_type, body) = match route(&head) {
        Route::Metrics => ("200 OK", CONTENT_TYPE, super::collect::encode(registry)),
        Route::NotFound => ("404 Not Found", "text/plain", "try /metrics\n".to_string()),
        Route::BadMethod => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
        Route::BadRequest => ("400 Bad Request", "text/plain", "bad request\n".into()),
    };
    let mut answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        answer.push_str(&body);
    }
    stream.write_all(answer.as_bytes())
}

/// Reads until the blank line that ends the head, at most [`MAX_REQUEST_BYTES`].
fn read_head(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_REQUEST_BYTES {
            break;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    head.truncate(MAX_REQUEST_BYTES);
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_routed_by_their_first_line() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics
        );
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"HEAD / HTTP/1.1\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"GET /admin HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::BadMethod);
        assert_eq!(route(b"\x16\x03\x01garbage"), Route::BadRequest);
        assert_eq!(route(b""), Route::BadRequest);
    }

    #[test]
    fn a_scrape_gets_the_text_and_garbage_gets_400() {
        use crate::metrics::collect::{registry, BridgeCollector};
        let stats = std::sync::Arc::new(crate::bridge::BridgeStats::default());
        stats.accepted.add(3);
        let addr = start(
            "127.0.0.1:0".parse().unwrap(),
            registry(vec![Box::new(BridgeCollector(stats))]),
        )
        .unwrap();
        let ask = |request: &[u8]| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(request).unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            answer
        };
        let answer = ask(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(
            answer.contains("gatehouse_connections_accepted_total 3\n"),
            "{answer}"
        );
        assert!(answer.ends_with("# EOF\n"), "{answer}");
        let answer = ask(b"\x00\x01\x02\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
}
