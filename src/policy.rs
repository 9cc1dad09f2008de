//! Which addresses a user may make the server reach (load-test targets, design imports by
//! URL, Kubernetes pings). Each is a server-side request forgery primitive, so link-local
//! addresses (cloud metadata lives there), unspecified, multicast and broadcast addresses
//! are refused unless the operator allows their network. Names are resolved once here and
//! the caller connects to the checked addresses, so a name cannot be re-pointed (DNS
//! rebinding) after the check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::http::Uri;

use crate::error::{ApiError, codes};

#[derive(Debug, Clone)]
pub struct Target {
    pub addrs: Vec<SocketAddr>,
    pub uri: Uri,
    pub host: String,
    /// For https: the name the certificate must carry.
    pub tls_name: Option<String>,
}

fn refused(url: &str, why: String) -> ApiError {
    ApiError::new(403, codes::FORBIDDEN_TARGET, format!("target {url} is refused: {why}"))
        .remedy("Point the test at the service itself, or have the operator allow that network (--perf-allow).")
}

/// Whether `ip` is in `cidr` (`10.0.0.0/8`, `fe80::/10`, or a bare address).
pub fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let (net, bits) = match cidr.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let Ok(net) = net.trim().parse::<IpAddr>() else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
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
            if in_cidr(IpAddr::V6(v6), "fe80::/10") {
                Some("link-local address")
            } else if v6
                == "fd00:ec2::254"
                    .parse::<Ipv6Addr>()
                    .unwrap_or(Ipv6Addr::UNSPECIFIED)
            {
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

/// Parses and resolves a target URL, refusing what the policy refuses.
pub async fn resolve(url: &str, allow: &[String]) -> Result<Target, ApiError> {
    let bad = |why: String| ApiError::bad_request(format!("url {url:?}: {why}"));
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
    let lookup_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let addrs: Vec<SocketAddr> = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::lookup_host((lookup_host.as_str(), port)),
    )
    .await
    .map_err(|_| bad("name resolution timed out".into()))?
    .map_err(|e| bad(format!("cannot resolve {host}: {e}")))?
    .collect();
    if addrs.is_empty() {
        return Err(bad(format!("{host} resolves to no address")));
    }
    for a in &addrs {
        if let Some(why) = refusal(a.ip())
            && !allow.iter().any(|cidr| in_cidr(a.ip(), cidr))
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
        tls_name: https.then_some(lookup_host),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_and_refusals() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_cidr(ip("10.1.2.3"), "10.0.0.0/8"));
        assert!(!in_cidr(ip("11.1.2.3"), "10.0.0.0/8"));
        assert!(in_cidr(ip("fe80::1"), "fe80::/10"));
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
        let e = resolve("http://169.254.169.254/latest/meta-data/", &[])
            .await
            .unwrap_err();
        assert_eq!(e.status, 403);
        assert!(
            resolve("http://169.254.169.254/", &["169.254.0.0/16".into()])
                .await
                .is_ok()
        );
        assert_eq!(
            resolve("http://metadata.google.internal/", &[])
                .await
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(
            resolve("ftp://127.0.0.1/", &[]).await.unwrap_err().status,
            400
        );
        assert_eq!(resolve("not a url", &[]).await.unwrap_err().status, 400);
        let ok = resolve("http://127.0.0.1:8080/a?b=1", &[]).await.unwrap();
        assert_eq!(ok.uri, "/a?b=1");
        assert_eq!(ok.host, "127.0.0.1:8080");
    }
}
