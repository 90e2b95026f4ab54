//! The web console (console/, built into console/dist and checked in), served from the binary
//! itself: `make run` needs no Node and an image carries no extra files. The console is a
//! client of the same edge like any other (grpc-web through the TypeScript SDK); these are
//! only its static files, under a policy that lets the page run nothing but its own script.

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use tonic::body::Body;

use crate::edge::full;

const INDEX: &[u8] = include_bytes!("../../console/dist/index.html");
const SCRIPT: &[u8] = include_bytes!("../../console/dist/app.js");
const STYLE: &[u8] = include_bytes!("../../console/dist/app.css");

/// Paths the platform's mail links to (verification, password reset, invitations): the
/// console's page, which reads the token from the address.
const MAILED_PATHS: [&str; 5] = ["/verify-email", "/reset-password", "/forgot-password", "/invitations/accept", "/sso"];

/// Scripts and styles from the edge itself only, calls only to the edge, no framing: a
/// string from the platform can never run as script in the page.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                                       connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Whether `request` asks for one of the console's files.
pub(crate) fn is_console(request: &Request<Body>) -> bool {
    (request.method() == Method::GET || request.method() == Method::HEAD) && file(request.uri().path()).is_some()
}

fn file(path: &str) -> Option<(&'static [u8], &'static str)> {
    match path {
        "/" | "/index.html" => Some((INDEX, "text/html; charset=utf-8")),
        "/console/app.js" => Some((SCRIPT, "text/javascript; charset=utf-8")),
        "/console/app.css" => Some((STYLE, "text/css; charset=utf-8")),
        path if MAILED_PATHS.contains(&path) => Some((INDEX, "text/html; charset=utf-8")),
        _ => None,
    }
}

/// The file `request` names.
pub(crate) fn serve(request: &Request<Body>) -> Response<Body> {
    let Some((content, content_type)) = file(request.uri().path()) else {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    };
    let mut response = Response::new(if request.method() == Method::HEAD { Body::empty() } else { full(content) });
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(content.len()));
    // The files change with the binary, not on a schedule: revalidate, never serve a stale copy.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
