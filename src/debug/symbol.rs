//! `/debug/pprof/symbol`: Go's symbol protocol. GET announces `num_symbols: 1`; POST (or GET
//! with a query) of `+`-separated hex addresses answers `0xADDR name` for each one that is in
//! a function of this process.

#![cfg(target_os = "linux")]

use crate::request_body::{BodyTimedOut, RequestBody};
use http_body_util::{BodyExt, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::responses::{self, Body};
use profiler::pprof;

/// Largest lookup body accepted.
const MAX_BODY: usize = 64 * 1024;

pub async fn handle(req: Request<RequestBody>) -> Response<Body> {
    match *req.method() {
        Method::GET | Method::HEAD => lookup(req.uri().query().unwrap_or("").as_bytes()),
        Method::POST => match read_limited(req.into_body()).await {
            Ok(body) => lookup(&body),
            Err(resp) => resp,
        },
        _ => responses::method_not_allowed("GET, HEAD, POST"),
    }
}

async fn read_limited(body: RequestBody) -> Result<Vec<u8>, Response<Body>> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(responses::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("symbol lookup body is larger than {MAX_BODY} bytes"),
        )),
        Err(e) if e.is::<BodyTimedOut>() => {
            let mut resp = responses::error(StatusCode::REQUEST_TIMEOUT, &e.to_string());
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            Err(resp)
        }
        Err(e) => Err(responses::error(
            StatusCode::BAD_REQUEST,
            &format!("reading request: {e}"),
        )),
    }
}

fn lookup(input: &[u8]) -> Response<Body> {
    let mut out = String::from("num_symbols: 1\n");
    for addr in input.split(|b| *b == b'+').filter_map(parse_address) {
        // Go's FuncForPC looks up the address itself, as our symbolizer does.
        if let Some(sym) = pprof::symbolize(addr) {
            out.push_str(&format!("{addr:#x} {}\n", sym.name));
        }
    }
    responses::text(StatusCode::OK, out)
}

fn parse_address(word: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(word).ok()?.trim();
    let hex = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    u64::from_str_radix(hex, 16).ok().filter(|a| *a != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_like_go() {
        assert_eq!(parse_address(b"0x10"), Some(16));
        assert_eq!(parse_address(b"0x0"), None);
        assert_eq!(parse_address(b"zz"), None);
        assert_eq!(parse_address(b"0xffffffffffffffff"), Some(u64::MAX));
    }

    #[test]
    fn the_highest_address_does_not_overflow() {
        let resp = lookup(b"0xffffffffffffffff+0x1");
        assert_eq!(resp.status(), StatusCode::OK);
    }
}
