//! The failure every domain error can carry: something inside the server broke and the
//! client cannot fix it. The HTTP layer logs the cause and answers a generic 500; the
//! cause never reaches the client.

/// Any error, boxed, as the cause of an [`Internal`] failure.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A failed internal step: what was being done, and why it failed.
#[derive(Debug, thiserror::Error)]
#[error("{doing} failed")]
pub struct Internal {
    pub doing: &'static str,
    #[source]
    pub cause: Cause,
}

impl Internal {
    pub fn new(doing: &'static str, cause: impl Into<Cause>) -> Self {
        Internal {
            doing,
            cause: cause.into(),
        }
    }
}

/// `result.or_internal("saving a design")?` in place of a hand-written `map_err`.
pub trait OrInternal<T> {
    fn or_internal(self, doing: &'static str) -> Result<T, Internal>;
}

impl<T, E: Into<Cause>> OrInternal<T> for Result<T, E> {
    fn or_internal(self, doing: &'static str) -> Result<T, Internal> {
        self.map_err(|e| Internal::new(doing, e))
    }
}

/// An error and its causes, one after another (a client library's own message is often
/// only the outermost layer, such as "client error (Connect)"); a cause whose text is
/// already shown is left out.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
