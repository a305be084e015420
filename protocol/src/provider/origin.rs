//! Web origins (`https://host[:port]`) of provider URLs and return addresses.
//!
//! The 2018 consent page used one unauthenticated `url` parameter both as the requester's name
//! and as the redirect target. Here a provider's origin comes from its signed card, and a
//! return address is accepted only if its origin is exactly the card's origin.

use super::ProviderError;

/// The scheme and authority of an `https` URL, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebOrigin(String);

impl WebOrigin {
    /// The origin of `url`. Only `https://host[:port]…` with a DNS name or IPv4 host and no
    /// user-info is accepted: user-info (`https://bank.example@evil.example`) is the classic
    /// way to make a link look like another site.
    pub fn of(url: &str) -> Result<Self, ProviderError> {
        let invalid = |reason: &'static str| ProviderError::InvalidUrl { reason };
        let rest = url
            .get(..8)
            .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
            .map(|_| &url[8..])
            .ok_or(invalid("not an https URL"))?;
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("contains whitespace"));
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(invalid("contains user information"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && !host.starts_with(['.', '-'])
            && !host.ends_with(['.', '-'])
            && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !host_ok {
            return Err(invalid("host is not a domain name"));
        }
        if let Some(port) = port
            && (port.is_empty() || port.len() > 5 || !port.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(invalid("port is not a number"));
        }
        Ok(Self(format!("https://{}", authority.to_ascii_lowercase())))
    }

    /// The origin as text (`https://host[:port]`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port_only() {
        let a = WebOrigin::of("https://Wattt.example/return?x=1").unwrap();
        assert_eq!(a.as_str(), "https://wattt.example");
        assert_eq!(a, WebOrigin::of("https://wattt.example#frag").unwrap());
        assert_ne!(a, WebOrigin::of("https://wattt.example:8443/").unwrap());
        assert_ne!(a, WebOrigin::of("https://wattt.example.evil.example/").unwrap());
        for bad in [
            "http://wattt.example",
            "https://wattt.example@evil.example",
            "https:///path",
            "https://wat tt.example",
            "https://wattt.example:80a",
            "meterkast:pair/xyz",
        ] {
            assert!(WebOrigin::of(bad).is_err(), "{bad}");
        }
    }
}
