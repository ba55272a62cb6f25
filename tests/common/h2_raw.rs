//! Just enough HTTP/2 framing to play a misbehaving client (RFC 9113): the preface, SETTINGS,
//! HEADERS with a literal HPACK block, and a frame reader. Real clients would not misbehave.

use std::io::{Read, Write};
use std::net::TcpStream;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const DATA: u8 = 0;
pub const HEADERS: u8 = 1;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PING: u8 = 6;
pub const GOAWAY: u8 = 7;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
/// SETTINGS_INITIAL_WINDOW_SIZE.
pub const INITIAL_WINDOW_SIZE: u16 = 4;

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut payload = Vec::new();
    for (id, value) in pairs {
        payload.extend_from_slice(&id.to_be_bytes());
        payload.extend_from_slice(&value.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &payload)
}

/// A request header block: static-table entries and literal values, no Huffman coding.
pub fn request_headers(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut block = vec![match method {
        "GET" => 0x82,
        "POST" => 0x83,
        other => panic!("no static entry for {other}"),
    }];
    block.push(0x86); // :scheme http
    literal(&mut block, 4, path); // :path
    literal(&mut block, 1, "localhost"); // :authority
    for (name, value) in extra {
        block.push(0x00); // literal without indexing, new name
        string(&mut block, name);
        string(&mut block, value);
    }
    block
}

fn literal(block: &mut Vec<u8>, name_index: u8, value: &str) {
    block.push(name_index); // literal without indexing, indexed name (4-bit prefix)
    string(block, value);
}

fn string(block: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 127);
    block.push(s.len() as u8);
    block.extend_from_slice(s.as_bytes());
}

/// Connects and sends the preface and `settings`.
pub fn open(addr: std::net::SocketAddr, settings_pairs: &[(u16, u32)]) -> TcpStream {
    let mut s = super::connect(addr);
    s.write_all(PREFACE).unwrap();
    s.write_all(&settings(settings_pairs)).unwrap();
    s
}

/// Reads one frame: (type, flags, stream, payload); None on EOF, reset or read timeout.
pub fn read_frame(s: &mut TcpStream) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    s.read_exact(&mut head).ok()?;
    let len = (head[0] as usize) << 16 | (head[1] as usize) << 8 | head[2] as usize;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).ok()?;
    Some((head[3], head[4], stream, payload))
}
