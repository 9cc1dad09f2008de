//! What can go wrong, said so a person can act on it, with one exit code per class.

use meshery_client::rest::Error;
use meshery_models::MeshKitError;

/// Exit codes, one per class of failure (also in `mesheryctl --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 1: the server failed, or answered something this version does not understand.
    Server = 1,
    /// 2: the command line is wrong.
    Usage = 2,
    /// 3: the config or token file cannot be read or written.
    Config = 3,
    /// 4: the named thing does not exist.
    NotFound = 4,
    /// 5: the change conflicts with the current state.
    Conflict = 5,
    /// 6: the server cannot be reached.
    Unreachable = 6,
    /// 7: no token, or the server refused it (expired, revoked): log in again.
    Unauthenticated = 7,
    /// 8: signed in, but not allowed.
    Forbidden = 8,
    /// 9: the server refused the request as invalid.
    Rejected = 9,
}

pub const EXIT_CODES: &str = "Exit codes: 0 done, 1 server error, 2 usage, 3 config or token file, \
4 not found, 5 conflict, 6 server unreachable, 7 not logged in or token expired, \
8 permission denied, 9 request rejected.";

#[derive(Debug)]
pub struct Failure {
    pub class: Class,
    pub message: String,
}

pub type Outcome<T = String> = Result<T, Failure>;

impl Failure {
    pub fn new(class: Class, message: impl Into<String>) -> Failure {
        Failure {
            class,
            message: message.into(),
        }
    }

    pub fn code(&self) -> u8 {
        self.class as u8
    }
}

pub fn usage(message: impl Into<String>) -> Failure {
    Failure::new(Class::Usage, message)
}

pub fn config(message: impl Into<String>) -> Failure {
    Failure::new(Class::Config, message)
}

const LOGIN: &str =
    "run `mesheryctl system login` (or `--headless` on a machine without a browser)";

/// A transport error: unreachable, timed out, or something else on the wire.
pub fn transport(e: &reqwest::Error, endpoint: &str) -> Failure {
    if let Some(tls) = tls_cause(e) {
        return tls_failure(endpoint, tls);
    }
    if e.is_connect() || e.is_timeout() {
        let what = if e.is_timeout() {
            "did not answer in time"
        } else {
            "is not reachable"
        };
        Failure::new(
            Class::Unreachable,
            format!(
                "the Meshery server at {endpoint} {what}; is it running? Start it with `meshery-server`, \
                 or point mesheryctl elsewhere (--server URL, MESHERY_SERVER, `mesheryctl system context switch`)"
            ),
        )
    } else {
        Failure::new(
            Class::Unreachable,
            format!("talking to {endpoint}: {}", chain(e)),
        )
    }
}

/// The rustls error under `e`, if the handshake is what failed. An `io::Error` hides its
/// payload from `source()`, so each link is looked into as well.
/// A failed TLS handshake: most often a certificate from the operator's own CA.
pub fn tls_failure(endpoint: &str, e: &dyn std::fmt::Display) -> Failure {
    Failure::new(
        Class::Config,
        format!(
            "the TLS connection to {endpoint} failed: {e}; if its certificate is from your own \
             CA, point MESHERY_CA_FILE at that CA's PEM file"
        ),
    )
}

pub fn tls_cause<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a meshery_tls::rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(link) = next {
        if let Some(t) = link.downcast_ref::<meshery_tls::rustls::Error>() {
            return Some(t);
        }
        next = match link
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => link.source(),
        };
    }
    None
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Maps a status and what the server said to a class and a message.
pub fn status(status: u16, said: &str, remedy: &str) -> Failure {
    let said = if said.is_empty() {
        format!("the server answered {status}")
    } else {
        said.to_string()
    };
    let with = |tail: &str| {
        if tail.is_empty() {
            said.clone()
        } else {
            format!("{said} ({tail})")
        }
    };
    match status {
        // Meshery answers an invalid session with a redirect to its login page.
        401 | 302 | 303 | 307 => Failure::new(
            Class::Unauthenticated,
            format!("not logged in or the token expired: {said}; {LOGIN}"),
        ),
        403 => Failure::new(
            Class::Forbidden,
            format!("permission denied: {}", with(remedy)),
        ),
        404 => Failure::new(Class::NotFound, with(remedy)),
        409 => Failure::new(Class::Conflict, with(remedy)),
        400..=499 => Failure::new(Class::Rejected, with(remedy)),
        _ => Failure::new(Class::Server, format!("server error: {}", with(remedy))),
    }
}

/// A generated client's error, classified.
pub fn api(e: Error<MeshKitError>, endpoint: &str) -> Failure {
    match e {
        Error::ErrorResponse(rv) => {
            let code = rv.status().as_u16();
            let body = rv.into_inner();
            status(code, &body.error, &body.suggested_remediation.join(" "))
        }
        Error::UnexpectedResponse(r) => status(r.status().as_u16(), "", ""),
        Error::CommunicationError(e) | Error::ResponseBodyError(e) | Error::InvalidUpgrade(e) => {
            transport(&e, endpoint)
        }
        Error::InvalidResponsePayload(_, e) => Failure::new(
            Class::Server,
            format!(
                "{endpoint} answered something this mesheryctl does not understand ({e}); is it a Meshery server?"
            ),
        ),
        Error::InvalidRequest(m) => usage(m),
        Error::Custom(m) => Failure::new(Class::Server, m),
    }
}

/// The HTTP status of a generated client's error answer, if it is one.
pub fn api_status(e: &Error<MeshKitError>) -> Option<u16> {
    match e {
        Error::ErrorResponse(rv) => Some(rv.status().as_u16()),
        Error::UnexpectedResponse(r) => Some(r.status().as_u16()),
        _ => None,
    }
}
