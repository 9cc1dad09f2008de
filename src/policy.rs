//! Which addresses a user may make the server reach (load-test targets, design imports by
//! URL, Kubernetes pings). Each is a server-side request forgery primitive, so link-local
//! addresses (cloud metadata lives there), unspecified, multicast and broadcast addresses
//! are refused unless the operator allows their network. Names are resolved once here and
//! the caller connects to the checked addresses, so a name cannot be re-pointed (DNS
//! rebinding) after the check.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use hyper::http::Uri;
use ipnet::IpNet;

#[derive(Debug, Clone)]
pub struct Target {
    /// The checked addresses: every connection for this target goes to one of them.
    pub addrs: Vec<SocketAddr>,
    pub uri: Uri,
    /// The Host header: the name, and the port when the URL gives one.
    pub host: String,
    /// The bare name (or address) that was resolved, without port or brackets.
    pub name: String,
    /// For https: the name the certificate must carry.
    pub tls_name: Option<String>,
}

/// A name lookup's answer.
pub type Lookup = Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>;

/// Resolves names for the policy. The system's resolver in the server; tests put one in
/// that answers differently each time, to prove nothing resolves a name twice.
pub trait Resolver: Send + Sync + 'static {
    fn lookup(&self, name: &str, port: u16) -> Lookup;
}

/// The system resolver (getaddrinfo through tokio).
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn lookup(&self, name: &str, port: u16) -> Lookup {
        let name = name.to_string();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((name.as_str(), port))
                .await?
                .collect())
        })
    }
}

/// The target policy: which networks are allowed although refused by default, and the
/// one resolver that decides where a name points.
#[derive(Clone)]
pub struct Targets {
    pub allow: Vec<IpNet>,
    pub resolver: Arc<dyn Resolver>,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            allow: Vec::new(),
            resolver: Arc::new(SystemResolver),
        }
    }
}

impl std::fmt::Debug for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Targets")
            .field("allow", &self.allow)
            .finish_non_exhaustive()
    }
}

/// Parses an allowed network: CIDR (`10.0.0.0/8`, `fe80::/10`) or a bare address.
pub fn parse_network(s: &str) -> Result<IpNet, NotANetwork> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| NotANetwork(s.to_string()))
}

/// A `--perf-allow` entry that is neither a CIDR network nor an address.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a network such as 10.0.0.0/8 or an address")]
pub struct NotANetwork(pub String);

/// Why a URL users gave cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Malformed, unresolvable or otherwise unusable (a 400 at the boundary).
    #[error("url {url:?}: {why}")]
    Bad { url: String, why: String },
    /// The policy refuses it (a 403 at the boundary).
    #[error("target {url} is refused: {why}")]
    Refused { url: String, why: String },
}

fn refused(url: &str, why: String) -> TargetError {
    TargetError::Refused {
        url: url.to_string(),
        why,
    }
}

/// Why an address is refused by default, if it is.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_link_local() {
                Some("link-local (cloud metadata) address")
            } else if v4.is_unspecified() {
                Some("unspecified address")
            } else if v4.is_multicast() || v4 == Ipv4Addr::BROADCAST {
                Some("multicast or broadcast address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if (v6.segments()[0] & 0xffc0) == 0xfe80 {
                Some("link-local address")
            } else if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some("cloud metadata address")
            } else if v6.is_unspecified() {
                Some("unspecified address")
            } else if v6.is_multicast() {
                Some("multicast address")
            } else {
                None
            }
        }
    }
}

impl Targets {
    /// Parses and resolves a target URL, refusing what the policy refuses.
    pub async fn resolve(&self, url: &str) -> Result<Target, TargetError> {
        let bad = |why: String| TargetError::Bad {
            url: url.to_string(),
            why,
        };
        let parsed = reqwest::Url::parse(url.trim()).map_err(|e| bad(e.to_string()))?;
        let https = match parsed.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(bad(format!("scheme {other:?} is not http or https"))),
        };
        let host = parsed
            .host_str()
            .ok_or_else(|| bad("no host".into()))?
            .to_string();
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad(
                "credentials in the URL are not supported; use headers".into()
            ));
        }
        let port = parsed.port_or_known_default().unwrap_or(80);
        if host.eq_ignore_ascii_case("metadata.google.internal")
            || host.eq_ignore_ascii_case("metadata")
        {
            return Err(refused(url, "cloud metadata host".into()));
        }
        let name = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let addrs: Vec<SocketAddr> = match name.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout(
                std::time::Duration::from_secs(5),
                self.resolver.lookup(&name, port),
            )
            .await
            .map_err(|_| bad("name resolution timed out".into()))?
            .map_err(|e| bad(format!("cannot resolve {host}: {e}")))?,
        };
        if addrs.is_empty() {
            return Err(bad(format!("{host} resolves to no address")));
        }
        for a in &addrs {
            if let Some(why) = refusal(a.ip())
                && !self.allow.iter().any(|net| net.contains(&a.ip()))
            {
                return Err(refused(url, format!("{} is a {why}", a.ip())));
            }
        }
        let path = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        };
        let uri: Uri = path
            .parse()
            .map_err(|_| bad("path is not a valid URI".into()))?;
        let host_header = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        Ok(Target {
            addrs,
            uri,
            host: host_header,
            tls_name: https.then(|| name.clone()),
            name,
        })
    }
}

/// A reqwest resolver that answers only from a target's checked addresses: any other
/// name is an error, so an HTTP client built for one target can never look a name up
/// again after the policy checked it (DNS rebinding).
pub struct Pinned(pub Target);

impl reqwest::dns::Resolve for Pinned {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let answer = if name.as_str().eq_ignore_ascii_case(&self.0.name) {
            let addrs: Vec<SocketAddr> = self.0.addrs.clone();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        } else {
            Err(format!("{} is not the checked target", name.as_str()).into())
        };
        Box::pin(std::future::ready(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowing(nets: &[&str]) -> Targets {
        Targets {
            allow: nets.iter().map(|n| parse_network(n).unwrap()).collect(),
            ..Targets::default()
        }
    }

    async fn resolve(url: &str, allow: &[&str]) -> Result<Target, TargetError> {
        allowing(allow).resolve(url).await
    }

    #[test]
    fn networks_and_refusals() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(
            parse_network("10.0.0.0/8")
                .unwrap()
                .contains(&ip("10.1.2.3"))
        );
        assert!(
            !parse_network("10.0.0.0/8")
                .unwrap()
                .contains(&ip("11.1.2.3"))
        );
        assert!(parse_network("fe80::/10").unwrap().contains(&ip("fe80::1")));
        assert!(
            parse_network(" 169.254.169.254 ")
                .unwrap()
                .contains(&ip("169.254.169.254"))
        );
        for bad in ["10.0.0.0/33", "10.0.0/8", "localhost", "", "fe80::/129"] {
            assert!(parse_network(bad).is_err(), "{bad}");
        }
        assert!(refusal(ip("fe80::1")).is_some());
        assert!(refusal(ip("fec0::1")).is_none());
        assert!(refusal(ip("169.254.169.254")).is_some());
        assert!(refusal(ip("::ffff:169.254.169.254")).is_some());
        assert!(refusal(ip("fd00:ec2::254")).is_some());
        assert!(refusal(ip("0.0.0.0")).is_some());
        assert!(refusal(ip("224.0.0.1")).is_some());
        assert!(refusal(ip("127.0.0.1")).is_none());
        assert!(refusal(ip("10.0.0.5")).is_none());
    }

    #[tokio::test]
    async fn metadata_targets_are_refused_unless_allowed() {
        // Refusals are 403 at the boundary, malformed URLs 400.
        let status = |e: TargetError| crate::error::ApiError::from(e).status;
        let e = resolve("http://169.254.169.254/latest/meta-data/", &[])
            .await
            .unwrap_err();
        assert!(matches!(e, TargetError::Refused { .. }), "{e}");
        assert_eq!(status(e), 403);
        assert!(
            resolve("http://169.254.169.254/", &["169.254.0.0/16"])
                .await
                .is_ok()
        );
        assert_eq!(
            status(
                resolve("http://metadata.google.internal/", &[])
                    .await
                    .unwrap_err()
            ),
            403
        );
        assert_eq!(
            status(resolve("ftp://127.0.0.1/", &[]).await.unwrap_err()),
            400
        );
        assert_eq!(status(resolve("not a url", &[]).await.unwrap_err()), 400);
        let ok = resolve("http://127.0.0.1:8080/a?b=1", &[]).await.unwrap();
        assert_eq!(ok.uri, "/a?b=1");
        assert_eq!(ok.host, "127.0.0.1:8080");
    }
}
