//! A minimal HTTP/1.1 client connection for the load generator: the request is rendered
//! once and written as is; answers are parsed with httparse into a reused buffer and
//! their bodies skipped (Content-Length, chunked, or to the end of the connection).
//! The worker task does the socket I/O itself, with no per-request allocation and no
//! hand-off to a connection task, so the generator leaves the CPU to the target.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
#[cfg(test)]
use tokio::net::TcpStream;

use super::loadgen::LoadSpec;

#[derive(Debug)]
pub enum H1Error {
    Io(std::io::Error),
    /// The server answered something that is not HTTP/1.1.
    BadResponse,
    /// The server closed the connection before a whole answer.
    Closed,
}

impl From<std::io::Error> for H1Error {
    fn from(e: std::io::Error) -> Self {
        H1Error::Io(e)
    }
}

/// The bytes of the request, rendered once per test.
pub fn render(spec: &LoadSpec) -> Vec<u8> {
    let path = spec.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut out = format!(
        "{} {} HTTP/1.1\r\nhost: {}\r\n",
        spec.method, path, spec.host
    )
    .into_bytes();
    let mut has_agent = false;
    for (k, v) in &spec.headers {
        has_agent |= k == axum::http::header::USER_AGENT;
        out.extend_from_slice(k.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_agent {
        out.extend_from_slice(b"user-agent: meshery-rs\r\n");
    }
    if !spec.body.is_empty()
        || !matches!(spec.method.as_str(), "GET" | "HEAD" | "DELETE" | "OPTIONS")
    {
        out.extend_from_slice(format!("content-length: {}\r\n", spec.body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&spec.body);
    out
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
    None,
}

pub struct H1Conn<S> {
    stream: S,
    buf: Vec<u8>,
    head_only: bool,
    /// The server asked to close, or the body ran to the end of the connection.
    pub closed: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> H1Conn<S> {
    pub fn new(stream: S, spec: &LoadSpec) -> Self {
        H1Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            head_only: spec.method == axum::http::Method::HEAD,
            closed: false,
        }
    }

    async fn fill(&mut self) -> Result<(), H1Error> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        match self.stream.read_buf(&mut self.buf).await? {
            0 => Err(H1Error::Closed),
            _ => Ok(()),
        }
    }

    /// Sends the request and reads the whole answer; returns its status.
    pub async fn exchange(&mut self, request: &[u8]) -> Result<u16, H1Error> {
        self.stream.write_all(request).await?;
        self.buf.clear();
        let (status, head_len, framing) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            match response
                .parse(&self.buf)
                .map_err(|_| H1Error::BadResponse)?
            {
                httparse::Status::Complete(head_len) => {
                    let status = response.code.ok_or(H1Error::BadResponse)?;
                    let mut framing = Framing::UntilClose;
                    for h in response.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let n = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse().ok())
                                .ok_or(H1Error::BadResponse)?;
                            framing = Framing::Length(n);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                            && h.value
                                .windows(7)
                                .any(|w| w.eq_ignore_ascii_case(b"chunked"))
                        {
                            framing = Framing::Chunked;
                        } else if h.name.eq_ignore_ascii_case("connection")
                            && h.value.windows(5).any(|w| w.eq_ignore_ascii_case(b"close"))
                        {
                            self.closed = true;
                        }
                    }
                    if self.head_only || status < 200 || status == 204 || status == 304 {
                        framing = Framing::None;
                    }
                    break (status, head_len, framing);
                }
                httparse::Status::Partial => self.fill().await?,
            }
        };
        match framing {
            Framing::None => {}
            Framing::Length(n) => {
                while self.buf.len() < head_len + n {
                    self.fill().await?;
                }
            }
            Framing::Chunked => self.skip_chunks(head_len).await?,
            Framing::UntilClose => {
                loop {
                    match self.fill().await {
                        Ok(()) => {}
                        Err(H1Error::Closed) => break,
                        Err(e) => return Err(e),
                    }
                    // Bounded memory: keep only the head.
                    self.buf.truncate(head_len);
                }
                self.closed = true;
            }
        }
        Ok(status)
    }

    /// Skips a chunked body that starts at `at` in the buffer.
    async fn skip_chunks(&mut self, mut at: usize) -> Result<(), H1Error> {
        loop {
            // The size line.
            let line_end = loop {
                if let Some(i) = self.buf[at..].windows(2).position(|w| w == b"\r\n") {
                    break at + i;
                }
                self.fill().await?;
            };
            let line =
                std::str::from_utf8(&self.buf[at..line_end]).map_err(|_| H1Error::BadResponse)?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16).map_err(|_| H1Error::BadResponse)?;
            at = line_end + 2;
            if size == 0 {
                // Trailers end with an empty line.
                loop {
                    if let Some(i) = self.buf[at..].windows(2).position(|w| w == b"\r\n") {
                        if i == 0 {
                            return Ok(());
                        }
                        at += i + 2;
                        continue;
                    }
                    self.fill().await?;
                }
            }
            while self.buf.len() < at + size + 2 {
                self.fill().await?;
            }
            at += size + 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(raw: &'static [u8], method: &str) -> Result<(u16, bool), H1Error> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            // Written in two parts, to exercise partial reads.
            let (a, b) = raw.split_at(raw.len() / 2);
            s.write_all(a).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            s.write_all(b).await.unwrap();
        });
        let spec = LoadSpec {
            addrs: vec![addr],
            uri: "/".parse().unwrap(),
            host: addr.to_string(),
            method: method.parse().unwrap(),
            headers: vec![],
            body: Default::default(),
            duration: std::time::Duration::from_secs(1),
            connections: 1,
            qps: 0.0,
            timeout: std::time::Duration::from_secs(1),
            http2: false,
            tls: None,
        };
        let mut conn = H1Conn::new(TcpStream::connect(addr).await.unwrap(), &spec);
        let status = conn.exchange(&render(&spec)).await?;
        Ok((status, conn.closed))
    }

    #[tokio::test]
    async fn framings() {
        assert_eq!(
            answer(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", "GET")
                .await
                .unwrap(),
            (200, false)
        );
        assert_eq!(
            answer(b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nx-t: 1\r\n\r\n", "GET")
                .await
                .unwrap(),
            (201, false)
        );
        assert_eq!(
            answer(
                b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end",
                "GET"
            )
            .await
            .unwrap(),
            (200, true)
        );
        assert_eq!(
            answer(b"HTTP/1.1 204 No Content\r\n\r\n", "GET")
                .await
                .unwrap(),
            (204, false)
        );
        assert_eq!(
            answer(b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n", "HEAD")
                .await
                .unwrap(),
            (200, false)
        );
        assert!(matches!(
            answer(b"SSH-2.0-nope\r\n\r\n", "GET").await,
            Err(H1Error::BadResponse)
        ));
        assert!(matches!(
            answer(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", "GET").await,
            Err(H1Error::Closed)
        ));
    }

    #[test]
    fn requests_are_rendered_once_with_their_body() {
        let spec = LoadSpec {
            addrs: vec![],
            uri: "/a?b=1".parse().unwrap(),
            host: "h:1".into(),
            method: axum::http::Method::POST,
            headers: vec![(
                axum::http::header::CONTENT_TYPE,
                "text/plain".parse().unwrap(),
            )],
            body: "hi".into(),
            duration: Default::default(),
            connections: 1,
            qps: 0.0,
            timeout: Default::default(),
            http2: false,
            tls: None,
        };
        let text = String::from_utf8(render(&spec)).unwrap();
        assert_eq!(
            text,
            "POST /a?b=1 HTTP/1.1\r\nhost: h:1\r\ncontent-type: text/plain\r\nuser-agent: meshery-rs\r\ncontent-length: 2\r\n\r\nhi"
        );
    }
}
