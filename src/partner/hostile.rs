//! Hostile answers of the mock partner: the broken ways a sandbox answers a list call, each
//! switched on by a fault, so a run's verdicts on them can be shown and tested.

use super::faults::Fault;
use crate::profile::BodyFormat;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use std::convert::Infallible;
use std::time::Duration;

/// How many bytes of zeros the gzip bomb unpacks to.
const BOMB_SIZE: usize = 32 * 1024 * 1024;

/// A header longer than any client reads.
const LONG_HEADER: usize = 1024 * 1024;

fn json_text(status: StatusCode, content_type: &'static str, body: &'static str) -> Response {
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The gzip bomb, compressed once per process (call early so no request waits for it).
pub fn gzip_bomb() -> &'static [u8] {
    static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BOMB.get_or_init(|| {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..BOMB_SIZE / zeros.len() {
            encoder.write_all(&zeros).expect("writing to memory");
        }
        encoder.finish().expect("writing to memory")
    })
}

/// The hostile answer `fault` gives to a list request at `path`, if it is a hostile fault.
/// `stall` is how long "never" lasts (longer than the client's timeout). XML partners get the
/// XML counterpart of each broken body, so the fault is about the body and not the format.
pub async fn answer(
    fault: Fault,
    path: &str,
    stall: Duration,
    format: BodyFormat,
) -> Option<Response> {
    if format.is_xml() {
        if let Some(response) = xml_answer(fault, format, stall) {
            return Some(response);
        }
    }
    let response = match fault {
        Fault::StaffListNoAnswer => {
            tokio::time::sleep(stall).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Fault::StaffListStalledBody => {
            let chunks = stream::unfold(0u8, move |step| async move {
                match step {
                    0 => Some((Ok::<_, Infallible>(b"{\"data\": [".to_vec()), 1)),
                    _ => {
                        tokio::time::sleep(stall).await;
                        None
                    }
                }
            });
            json_stream(Body::from_stream(chunks))
        }
        Fault::StaffListHugeBody => {
            // An endless array: the client must stop reading at its cap.
            let chunks = stream::unfold(true, |first| async move {
                let chunk = if first {
                    b"{\"data\": [".to_vec()
                } else {
                    b"{\"id\": \"S-0\", \"email\": \"x@example.org\"},".repeat(1024)
                };
                Some((Ok::<_, Infallible>(chunk), false))
            });
            json_stream(Body::from_stream(chunks))
        }
        Fault::StaffListResetMidResponse => {
            let chunks = stream::iter([
                Ok(b"{\"data\": [{\"id\": \"S-0001\"".to_vec()),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "reset on purpose",
                )),
            ]);
            json_stream(Body::from_stream(chunks))
        }
        Fault::StaffListInvalidJson => {
            json_text(StatusCode::OK, "application/json", "{\"data\": [{\"id\": ")
        }
        Fault::StaffListWrongShape => json_text(
            StatusCode::OK,
            "application/json",
            "{\"data\": {\"staff\": \"not a list\"}, \"items\": 3}",
        ),
        Fault::StaffListHtml200 => json_text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<!DOCTYPE html><html><body><h1>Internal error</h1><p>Please try later.</p></body></html>",
        ),
        Fault::StaffListWrongContentType => {
            json_text(StatusCode::OK, "text/plain", "{\"data\": []}")
        }
        Fault::StaffListEmpty200 => json_text(StatusCode::OK, "application/json", ""),
        Fault::StaffList204 => StatusCode::NO_CONTENT.into_response(),
        Fault::StaffListRedirectLoop => redirect(path.to_owned(), format),
        Fault::StaffListRedirectOtherHost => {
            redirect(format!("http://127.0.0.2:9{path}"), format)
        }
        Fault::StaffListGzipBomb => {
            let mut response = (StatusCode::OK, gzip_bomb()).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        }
        Fault::StaffListLongHeaders => {
            let mut response = json_text(StatusCode::OK, "application/json", "{\"data\": []}");
            let long = "x".repeat(LONG_HEADER);
            if let Ok(value) = HeaderValue::from_str(&long) {
                response.headers_mut().insert("x-padding", value);
            }
            response
        }
        _ => return None,
    };
    Some(response)
}

/// The XML versions of the hostile bodies that are JSON-specific.
fn xml_answer(fault: Fault, format: BodyFormat, stall: Duration) -> Option<Response> {
    let content_type = match format {
        BodyFormat::Soap12 => "application/soap+xml",
        BodyFormat::Soap11 => "text/xml",
        _ => "application/xml",
    };
    let text = |body: &'static str| {
        let mut response = (StatusCode::OK, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    };
    let response = match fault {
        Fault::StaffListInvalidJson => text("<?xml version=\"1.0\"?><staffList><staff><id>S-1"),
        Fault::StaffListWrongShape => text(
            "<?xml version=\"1.0\"?><unexpected><staff>not a list</staff><items>3</items></unexpected>",
        ),
        Fault::StaffListWrongContentType => {
            let mut response = text("<?xml version=\"1.0\"?><staffList/>");
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            response
        }
        Fault::StaffListEmpty200 => text(""),
        Fault::StaffListStalledBody => {
            let chunks = stream::unfold(0u8, move |step| async move {
                match step {
                    0 => Some((
                        Ok::<_, Infallible>(b"<?xml version=\"1.0\"?><staffList>".to_vec()),
                        1,
                    )),
                    _ => {
                        tokio::time::sleep(stall).await;
                        None
                    }
                }
            });
            let mut response = Response::new(Body::from_stream(chunks));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        Fault::StaffListResetMidResponse => {
            let chunks = stream::iter([
                Ok(b"<?xml version=\"1.0\"?><staffList><staff id=\"S-0001\">".to_vec()),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "reset on purpose",
                )),
            ]);
            let mut response = Response::new(Body::from_stream(chunks));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        Fault::StaffListHugeBody => {
            let chunks = stream::unfold(true, |first| async move {
                let chunk = if first {
                    b"<?xml version=\"1.0\"?><staffList>".to_vec()
                } else {
                    b"<staff><id>S-0</id><email>x@example.org</email></staff>".repeat(1024)
                };
                Some((Ok::<_, Infallible>(chunk), false))
            });
            let mut response = Response::new(Body::from_stream(chunks));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        _ => return None,
    };
    Some(response)
}

fn json_stream(body: Body) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A SOAP list is a POST: it is redirected with 307, which keeps the method and the envelope
/// (a 302 would turn it into a GET, a different fault).
fn redirect(location: String, format: BodyFormat) -> Response {
    let status = if format.is_soap() {
        StatusCode::TEMPORARY_REDIRECT
    } else {
        StatusCode::FOUND
    };
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
