//! What the CSRF guard needs of a `multipart/form-data` body: its first part, which must be the
//! `csrf` field, read without touching the files that follow; and the body handed on whole (the
//! bytes already read, then the rest as it streams in).

use axum::body::{Body, Bytes};
use axum::BoxError;
use http_body::Frame;
use http_body_util::{BodyExt, Limited};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The most read of a body to find its first part (the CSRF token is 43 characters).
pub const FIRST_PART_MAX: usize = 8 * 1024;

/// The boundary of a `multipart/form-data` content type, quoted or not.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let mime = params.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty() && b.len() <= 70)
}

#[derive(Debug, PartialEq, Eq)]
pub enum FirstPart {
    /// More bytes are needed.
    Incomplete,
    /// A field (not a file) and its value.
    Field { name: String, value: String },
    /// The first part is a file, or the body is not multipart as declared.
    Refused(&'static str),
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads the first part of `buf` (the start of a body with the given boundary).
pub fn first_part(buf: &[u8], boundary: &str) -> FirstPart {
    let delimiter = format!("--{boundary}");
    let open = delimiter.len() + 2;
    if buf.len() < open {
        return if delimiter
            .as_bytes()
            .starts_with(&buf[..buf.len().min(delimiter.len())])
        {
            FirstPart::Incomplete
        } else {
            FirstPart::Refused("le corps ne commence pas par la frontière annoncée")
        };
    }
    if !buf.starts_with(delimiter.as_bytes()) || &buf[delimiter.len()..open] != b"\r\n" {
        return FirstPart::Refused("le corps ne commence pas par la frontière annoncée");
    }
    let rest = &buf[open..];
    let Some(headers_end) = find(rest, b"\r\n\r\n") else {
        return FirstPart::Incomplete;
    };
    let Ok(headers) = std::str::from_utf8(&rest[..headers_end]) else {
        return FirstPart::Refused("en-têtes de la première partie illisibles");
    };
    let disposition = headers
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
        .map(|(_, v)| v.trim());
    let Some(disposition) = disposition else {
        return FirstPart::Refused("première partie sans Content-Disposition");
    };
    let mut name = None;
    for param in disposition.split(';').skip(1) {
        let Some((k, v)) = param.split_once('=') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(v.trim().trim_matches('"').to_string()),
            "filename" | "filename*" => {
                return FirstPart::Refused("la première partie est un fichier")
            }
            _ => {}
        }
    }
    let Some(name) = name else {
        return FirstPart::Refused("première partie sans nom");
    };
    let content = &rest[headers_end + 4..];
    let closing = format!("\r\n{delimiter}");
    let Some(end) = find(content, closing.as_bytes()) else {
        return FirstPart::Incomplete;
    };
    match std::str::from_utf8(&content[..end]) {
        Ok(v) => FirstPart::Field {
            name,
            value: v.to_string(),
        },
        Err(_) => FirstPart::Refused("valeur de la première partie illisible"),
    }
}

/// Reads `body` until its first part is whole (at most [`FIRST_PART_MAX`] bytes). Returns what
/// was read, the first part, and the unread rest.
pub async fn read_first_part(
    mut body: Limited<Body>,
    boundary: &str,
) -> Result<(Bytes, FirstPart, Limited<Body>), BoxError> {
    let mut buf = Vec::new();
    loop {
        let parsed = first_part(&buf, boundary);
        if parsed != FirstPart::Incomplete {
            return Ok((Bytes::from(buf), parsed, body));
        }
        if buf.len() > FIRST_PART_MAX {
            return Ok((
                Bytes::from(buf),
                FirstPart::Refused("la première partie est trop longue pour un jeton"),
                body,
            ));
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => return Err(e),
            None => {
                return Ok((
                    Bytes::from(buf),
                    FirstPart::Refused("le corps s’arrête avant la fin de la première partie"),
                    body,
                ))
            }
        }
    }
}

/// The bytes already read, then the rest of the body (still under its size limit).
pub struct Prefixed {
    prefix: Option<Bytes>,
    rest: Limited<Body>,
}

impl Prefixed {
    pub fn into_body(prefix: Bytes, rest: Limited<Body>) -> Body {
        Body::new(Prefixed {
            prefix: (!prefix.is_empty()).then_some(prefix),
            rest,
        })
    }
}

impl http_body::Body for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(p) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(p))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::{boundary, first_part, FirstPart};

    #[test]
    fn reads_the_boundary() {
        assert_eq!(
            boundary("multipart/form-data; boundary=----abc").as_deref(),
            Some("----abc")
        );
        assert_eq!(
            boundary("Multipart/Form-Data;boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(
            boundary("application/x-www-form-urlencoded; boundary=x"),
            None
        );
    }

    #[test]
    fn the_first_field_is_read_and_a_file_first_is_refused() {
        let body = "--XX\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\njeton\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.pdf\"\r\n\r\n%PDF";
        assert_eq!(
            first_part(body.as_bytes(), "XX"),
            FirstPart::Field {
                name: "csrf".into(),
                value: "jeton".into()
            }
        );
        for cut in 0..body.find("jeton\r\n--XX").unwrap() + 9 {
            assert_eq!(
                first_part(&body.as_bytes()[..cut], "XX"),
                FirstPart::Incomplete,
                "{cut}"
            );
        }
        let file_first =
            "--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.pdf\"\r\n\r\n%PDF";
        assert!(matches!(
            first_part(file_first.as_bytes(), "XX"),
            FirstPart::Refused(_)
        ));
        assert!(matches!(
            first_part(b"garbage that is long enough", "XX"),
            FirstPart::Refused(_)
        ));
    }
}
