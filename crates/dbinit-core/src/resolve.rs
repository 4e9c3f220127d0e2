//! Which backend reads a URL: [`DatabaseUrl::parse`] finds the registered
//! connector that claims the scheme (or takes `key=value` strings) and has
//! it check the URL and say how it is shown. A scheme no registered backend
//! claims still parses, read as a standard URL, so that the registry can
//! name it in its error.

use crate::registry::{self, ConnectorRegistration};
use crate::url::{invalid, looks_like_keywords, scheme_of, standard, DatabaseUrl};
use crate::CoreError;

impl DatabaseUrl {
    /// Parses `input`: a URL whose scheme selects the backend, checked by
    /// that backend's rules, or a `key=value` string read by the backend
    /// that takes them.
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidUrl`] (with the input redacted) when the input is
    /// empty, has no scheme, or is malformed for its backend.
    pub fn parse(input: &str) -> Result<Self, CoreError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(invalid(trimmed, "the url is empty"));
        }
        let url = |scheme: String, keywords: bool, redacted: String| DatabaseUrl {
            raw: trimmed.to_owned(),
            scheme,
            keywords,
            redacted,
        };
        // The two forms exclude each other: a scheme has no `=` before its `:`.
        let scheme = scheme_of(trimmed);
        let keywords = scheme.is_none() && looks_like_keywords(trimmed);
        if let Some(scheme) = scheme {
            let lower = scheme.to_ascii_lowercase();
            if let Some(backend) = claimed(|c| c.schemes().iter().any(|s| *s == lower)) {
                let redacted = backend.make().check_url(trimmed, false)?;
                return Ok(url(lower, false, redacted));
            }
            // A scheme nobody claims is read as a standard URL, so that the
            // registry can name it; `host:port` and `C:\\` are not URLs.
            if trimmed[scheme.len()..].starts_with("://") {
                let (_, redacted) = standard(trimmed)?;
                return Ok(url(lower, false, redacted));
            }
        }
        if scheme.is_some() || keywords {
            // Nothing linked that could read it: say that, not "no scheme".
            if let Err(e @ CoreError::NoBackends) = registry::connectors() {
                return Err(e);
            }
        }
        if keywords {
            if let Some(backend) = claimed(|c| c.make().keyword_strings()) {
                let connector = backend.make();
                let redacted = connector.check_url(trimmed, true)?;
                let scheme = connector.schemes().first().copied().unwrap_or_default();
                return Ok(url(scheme.to_owned(), true, redacted));
            }
        }
        let examples = registry::connectors()
            .map(|all| {
                all.iter()
                    .flat_map(|c| c.schemes().iter().map(|s| format!("{s}://")))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let reason = if trimmed.starts_with('/') || trimmed.starts_with('.') {
            format!("a bare path is not a url; write the backend's scheme before it ({examples})")
        } else {
            format!("no scheme (expected a URL such as {examples}, or key=value pairs)")
        };
        Err(invalid(trimmed, &reason))
    }

    /// The registered backend that claims this URL.
    ///
    /// # Errors
    ///
    /// [`CoreError::UnknownBackend`] listing the registered backends, or a
    /// registry error (none linked, two claiming one scheme).
    pub fn connector(&self) -> Result<&'static ConnectorRegistration, CoreError> {
        let all = registry::connectors()?;
        let claims = |c: &&ConnectorRegistration| {
            c.schemes()
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&self.scheme))
        };
        all.iter()
            .copied()
            .find(claims)
            .ok_or_else(|| CoreError::UnknownBackend {
                scheme: self.scheme.clone(),
                registered: all
                    .iter()
                    .map(|c| format!("{} ({})", c.name(), c.schemes().join(", ")))
                    .collect(),
            })
    }
}

/// The registered connector that `claims`, if the registry can say.
fn claimed(
    claims: impl Fn(&ConnectorRegistration) -> bool,
) -> Option<&'static ConnectorRegistration> {
    let all = registry::connectors().ok()?;
    all.iter().copied().find(|c| claims(c))
}

/// `input` with every secret hidden, whether or not it parses: for showing
/// a URL that came from the user before it was validated.
pub fn redact(input: &str) -> String {
    match DatabaseUrl::parse(input) {
        Ok(url) => url.redacted,
        // The parser's refusal already shows the input redacted, knowing why
        // it was refused (a secret in the path, say).
        Err(CoreError::InvalidUrl { url, .. }) => url,
        Err(_) => crate::url::redact_loose(input.trim()),
    }
}
