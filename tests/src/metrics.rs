//! Reading a server's metrics endpoint in tests: one scrape over plain HTTP, and one series'
//! value out of the text.

use crate::client::raw_connect;
use std::io::{Read, Write};
use std::net::SocketAddr;

/// The whole answer to `GET /metrics` (status line and headers included).
pub fn scrape(addr: SocketAddr) -> String {
    let mut stream = raw_connect(addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    answer
}

/// The value of `series` (its name and labels exactly as printed) in a scrape.
pub fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}
