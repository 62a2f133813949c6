//! The sync server's address as a person types it, checked before anything is sent: a typo is
//! an input error naming `server_url`, never "offline" and never retried.

use crate::domain::DomainError;
use crate::error::Result;

/// The normalised base URL (`http(s)://host[:port][/path]`, no trailing slash) or an error that
/// says what is wrong with it.
pub fn server_address(input: &str) -> Result<String> {
    let bad = |problem: String| DomainError::invalid("server_url", problem).into();
    let text = input.trim();
    if text.is_empty() {
        return Err(bad("the server address is empty".into()));
    }
    if !text.contains("://") {
        return Err(bad(format!("{text:?} has no scheme; write it as https://{text}")));
    }
    let url = reqwest::Url::parse(text).map_err(|err| bad(format!("{text:?} is not a web address ({err})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "{text:?} uses {}:, a sync server is reached over https:// (or http://)",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad(format!("{text:?} names no server")));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad(format!("{text:?} carries a query, fragment or user name; give only the server's address")));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn problem(input: &str) -> String {
        match server_address(input) {
            Err(Error::Domain(DomainError::InvalidField { field, problem })) if field == "server_url" => problem,
            other => panic!("{input:?} gave {other:?}"),
        }
    }

    #[test]
    fn a_usable_address_is_normalised() {
        assert_eq!(server_address(" https://sync.example.org/ ").unwrap(), "https://sync.example.org");
        assert_eq!(server_address("http://127.0.0.1:8787").unwrap(), "http://127.0.0.1:8787");
        assert_eq!(server_address("https://example.org/microcohort/").unwrap(), "https://example.org/microcohort");
    }

    #[test]
    fn a_wrong_address_says_what_is_wrong() {
        assert!(problem("").contains("empty"));
        assert!(problem("sync.example.org").contains("https://sync.example.org"));
        assert!(problem("ftp://sync.example.org").contains("ftp:"));
        assert!(problem("http://").contains("not a web address"));
        assert!(problem("https://example.org/?token=1").contains("query"));
    }
}
