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
        has_agent |= k == hyper::http::header::USER_AGENT;
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

/// The longest response head accepted; a target cannot make the generator buffer more.
pub const MAX_HEAD: usize = 64 * 1024;
/// The longest chunk-size line (hex size plus extensions).
const MAX_SIZE_LINE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    /// Body bytes still to come.
    Length(u64),
    ChunkSize,
    /// Data bytes left in the current chunk.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// Trailer lines, ended by an empty line; the bytes read so far.
    Trailers(usize),
    UntilClose,
    Done,
}

/// Decodes one response from bytes as they arrive, keeping none of the body: each call
/// consumes what it can and says how much, so the caller's buffer holds at most a
/// partial head or line. Sizes use checked arithmetic; malformed framing is an error.
#[derive(Debug)]
pub struct Decoder {
    state: State,
    head_only: bool,
    pub status: u16,
    /// The server asked to close, or the body runs to the end of the connection.
    pub close: bool,
    /// Body bytes seen (counted, then discarded).
    pub body_bytes: u64,
}

impl Decoder {
    pub fn new(head_only: bool) -> Self {
        Decoder {
            state: State::Head,
            head_only,
            status: 0,
            close: false,
            body_bytes: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes a prefix of `input`; returns its length. Call again with more bytes
    /// (the unconsumed rest first) until `is_done`.
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, H1Error> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match self.state {
                State::Done => return Ok(at),
                State::Head => {
                    let mut headers = [httparse::EMPTY_HEADER; 64];
                    let mut response = httparse::Response::new(&mut headers);
                    match response.parse(rest).map_err(|_| H1Error::BadResponse)? {
                        httparse::Status::Partial => {
                            if rest.len() > MAX_HEAD {
                                return Err(H1Error::BadResponse);
                            }
                            return Ok(at);
                        }
                        httparse::Status::Complete(len) => {
                            let status = response.code.ok_or(H1Error::BadResponse)?;
                            self.state = self.framing(status, response.headers)?;
                            at += len;
                        }
                    }
                }
                State::Length(0) => self.state = State::Done,
                State::Length(left) | State::ChunkData(left) => {
                    if rest.is_empty() {
                        return Ok(at);
                    }
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    at += take;
                    self.count(take)?;
                    let left = left - take as u64;
                    self.state = match self.state {
                        State::Length(_) => State::Length(left),
                        _ if left == 0 => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                }
                State::UntilClose => {
                    self.count(rest.len())?;
                    return Ok(input.len());
                }
                State::ChunkSize => {
                    let Some(line) = line(rest, MAX_SIZE_LINE)? else {
                        return Ok(at);
                    };
                    let text =
                        std::str::from_utf8(&rest[..line]).map_err(|_| H1Error::BadResponse)?;
                    let digits = text.split(';').next().unwrap_or("").trim();
                    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(H1Error::BadResponse);
                    }
                    // Overflow (more than 16 hex digits' worth) is an error, not a wrap.
                    let size = u64::from_str_radix(digits, 16).map_err(|_| H1Error::BadResponse)?;
                    at += line + 2;
                    self.state = if size == 0 {
                        State::Trailers(0)
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkEnd => {
                    if rest.len() < 2 {
                        return Ok(at);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(H1Error::BadResponse);
                    }
                    at += 2;
                    self.state = State::ChunkSize;
                }
                State::Trailers(seen) => {
                    let Some(line) = line(rest, MAX_HEAD.saturating_sub(seen))? else {
                        return Ok(at);
                    };
                    at += line + 2;
                    self.state = if line == 0 {
                        State::Done
                    } else {
                        State::Trailers(seen + line + 2)
                    };
                }
            }
        }
    }

    /// The connection ended: fine only where the body runs to the end of the connection.
    pub fn end_of_stream(&mut self) -> Result<(), H1Error> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                self.close = true;
                Ok(())
            }
            _ => Err(H1Error::Closed),
        }
    }

    fn count(&mut self, n: usize) -> Result<(), H1Error> {
        self.body_bytes = self
            .body_bytes
            .checked_add(n as u64)
            .ok_or(H1Error::BadResponse)?;
        Ok(())
    }

    /// How the body after this head is framed (RFC 9112, section 6.3).
    fn framing(&mut self, status: u16, headers: &[httparse::Header<'_>]) -> Result<State, H1Error> {
        self.status = status;
        let mut length: Option<u64> = None;
        let mut chunked = false;
        for h in headers {
            if h.name.eq_ignore_ascii_case("content-length") {
                let n = std::str::from_utf8(h.value)
                    .ok()
                    .map(str::trim)
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or(H1Error::BadResponse)?;
                // Two different lengths: the framing is ambiguous (response splitting).
                if length.is_some_and(|l| l != n) {
                    return Err(H1Error::BadResponse);
                }
                length = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = h
                    .value
                    .split(|&b| b == b',')
                    .next_back()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if h.name.eq_ignore_ascii_case("connection")
                && h.value.windows(5).any(|w| w.eq_ignore_ascii_case(b"close"))
            {
                self.close = true;
            }
        }
        Ok(
            if self.head_only || status < 200 || status == 204 || status == 304 {
                State::Done
            } else if chunked {
                State::ChunkSize
            } else if let Some(n) = length {
                State::Length(n)
            } else {
                self.close = true;
                State::UntilClose
            },
        )
    }
}

/// The length of the line at the start of `input` (without its CRLF), once complete;
/// an error when it is longer than `max`.
fn line(input: &[u8], max: usize) -> Result<Option<usize>, H1Error> {
    match input.windows(2).position(|w| w == b"\r\n") {
        Some(i) if i <= max => Ok(Some(i)),
        Some(_) => Err(H1Error::BadResponse),
        None if input.len() > max + 1 => Err(H1Error::BadResponse),
        None => Ok(None),
    }
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
            head_only: spec.method == hyper::http::Method::HEAD,
            closed: false,
        }
    }

    /// The read buffer's size: bounded by the head limit, whatever the body's size.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Sends the request and reads the whole answer, discarding its body; its status.
    pub async fn exchange(&mut self, request: &[u8]) -> Result<u16, H1Error> {
        self.stream.write_all(request).await?;
        self.buf.clear();
        let mut decoder = Decoder::new(self.head_only);
        loop {
            let used = decoder.feed(&self.buf)?;
            self.buf.drain(..used);
            if decoder.is_done() {
                self.closed = decoder.close;
                return Ok(decoder.status);
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(16 * 1024);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                decoder.end_of_stream()?;
                self.closed = true;
                return Ok(decoder.status);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One connection, one second, to `addr` at `/`.
    fn spec_for(addr: std::net::SocketAddr, method: hyper::http::Method) -> LoadSpec {
        LoadSpec {
            addrs: vec![addr],
            uri: "/".parse().unwrap(),
            host: addr.to_string(),
            method,
            headers: vec![],
            body: Default::default(),
            duration: std::time::Duration::from_secs(1),
            connections: 1,
            qps: 0.0,
            timeout: std::time::Duration::from_secs(1),
            http2: false,
            tls: None,
        }
    }

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
        let spec = spec_for(addr, method.parse().unwrap());
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

    /// A target that answers one request with `head` and then `body_len` bytes of body
    /// (chunked in 8 KiB chunks when `chunked`), written as fast as the socket takes it.
    async fn streaming_target(body_len: u64, chunked: bool) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let head = if chunked {
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_string()
            } else {
                format!("HTTP/1.1 200 OK\r\ncontent-length: {body_len}\r\n\r\n")
            };
            s.write_all(head.as_bytes()).await.unwrap();
            let block = vec![b'x'; 8192];
            let mut left = body_len;
            while left > 0 {
                let n = left.min(8192) as usize;
                if chunked {
                    s.write_all(format!("{n:x}\r\n").as_bytes()).await.unwrap();
                }
                s.write_all(&block[..n]).await.unwrap();
                if chunked {
                    s.write_all(b"\r\n").await.unwrap();
                }
                left -= n as u64;
            }
            if chunked {
                s.write_all(b"0\r\n\r\n").await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn large_bodies_stream_through_a_bounded_buffer() {
        for chunked in [false, true] {
            let addr = streaming_target(64 << 20, chunked).await;
            let spec = spec_for(addr, hyper::http::Method::GET);
            let mut conn = H1Conn::new(TcpStream::connect(addr).await.unwrap(), &spec);
            assert_eq!(conn.exchange(&render(&spec)).await.unwrap(), 200);
            // 64 MiB went through; the buffer stayed near its initial 16 KiB.
            assert!(
                conn.buffer_capacity() <= MAX_HEAD,
                "buffer grew to {} bytes (chunked: {chunked})",
                conn.buffer_capacity()
            );
        }
    }

    /// Feeds `input` in the given piece sizes, as reads from a socket would deliver it.
    fn decode_in_pieces(
        input: &[u8],
        pieces: &[usize],
        head_only: bool,
    ) -> Result<(Decoder, usize), H1Error> {
        let mut decoder = Decoder::new(head_only);
        let mut buffered: Vec<u8> = Vec::new();
        let mut fed = 0;
        let mut sizes = pieces.iter().cycle();
        loop {
            let used = decoder.feed(&buffered)?;
            buffered.drain(..used);
            assert!(
                buffered.len() <= MAX_HEAD + 4096,
                "kept {} bytes",
                buffered.len()
            );
            if decoder.is_done() {
                return Ok((decoder, fed - buffered.len()));
            }
            if fed == input.len() {
                decoder.end_of_stream()?;
                return Ok((decoder, fed));
            }
            let n = (*sizes.next().unwrap_or(&1)).clamp(1, input.len() - fed);
            buffered.extend_from_slice(&input[fed..fed + n]);
            fed += n;
        }
    }

    use proptest::prelude::*;

    /// A well-formed response: its bytes, status, body length, and whether it is
    /// delimited by the end of the connection.
    fn response() -> impl Strategy<Value = (Vec<u8>, u16, u64, bool)> {
        (
            prop::sample::select(vec![200u16, 201, 204, 302, 404, 500]),
            prop::collection::vec(0usize..3000, 0..6),
            0u8..3,
            any::<bool>(),
        )
            .prop_map(|(status, chunks, framing, close)| {
                let total: usize = chunks.iter().sum();
                let mut out = format!("HTTP/1.1 {status} X\r\nserver: t\r\n").into_bytes();
                if close {
                    out.extend_from_slice(b"connection: close\r\n");
                }
                let body_len = if status == 204 { 0 } else { total as u64 };
                match framing {
                    0 => {
                        out.extend_from_slice(
                            format!("content-length: {body_len}\r\n\r\n").as_bytes(),
                        );
                        out.extend(std::iter::repeat_n(b'a', body_len as usize));
                    }
                    1 => {
                        out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
                        if status != 204 {
                            for c in chunks.iter().filter(|c| **c > 0) {
                                out.extend_from_slice(format!("{c:X};ext=1\r\n").as_bytes());
                                out.extend(std::iter::repeat_n(b'b', *c));
                                out.extend_from_slice(b"\r\n");
                            }
                            out.extend_from_slice(b"0\r\nx-trailer: y\r\n\r\n");
                        }
                    }
                    _ => {
                        out.extend_from_slice(b"\r\n");
                        out.extend(std::iter::repeat_n(b'c', body_len as usize));
                    }
                }
                (out, status, body_len, framing == 2 && status != 204)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// However the bytes are split, a response decodes to its status and body length
        /// and consumes exactly its own bytes.
        #[test]
        fn responses_decode_however_they_are_split(
            (bytes, status, body_len, until_close) in response(),
            pieces in prop::collection::vec(1usize..5000, 1..8),
        ) {
            let (decoder, used) = decode_in_pieces(&bytes, &pieces, false).unwrap();
            prop_assert_eq!(decoder.status, status);
            prop_assert_eq!(decoder.body_bytes, body_len);
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(decoder.close, until_close || bytes.windows(17).any(|w| w == b"connection: close"));
        }

        /// A response cut short is never taken as complete (unless its body runs to the
        /// end of the connection).
        #[test]
        fn truncated_responses_are_errors((bytes, _, _, until_close) in response(), cut in 0.0f64..1.0) {
            let at = ((bytes.len() as f64) * cut) as usize;
            prop_assume!(at < bytes.len() && !until_close);
            let truncated = &bytes[..at];
            prop_assert!(decode_in_pieces(truncated, &[7], false).is_err());
        }

        /// Arbitrary bytes, or a response with bytes changed, end in an answer or an error
        /// without a panic and without keeping more than the head limit.
        #[test]
        fn garbage_never_panics(
            (mut bytes, _, _, _) in response(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            noise in prop::collection::vec(any::<u8>(), 0..2048),
        ) {
            for (i, b) in flips {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            let _ = decode_in_pieces(&bytes, &[3, 100, 1], false);
            let _ = decode_in_pieces(&noise, &[64], false);
        }
    }

    #[test]
    fn framing_that_could_overflow_or_split_is_refused() {
        let decode = |raw: &[u8]| decode_in_pieces(raw, &[4096], false);
        for bad in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1ffffffffffffffff\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        ] {
            assert!(decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        // A head that never ends is refused once it passes the limit.
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        endless.extend(std::iter::repeat_n(b'h', MAX_HEAD + 10));
        assert!(decode(&endless).is_err());
        // The largest length is accepted; the body then ends early: closed, no overflow.
        assert!(matches!(
            decode(b"HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551615\r\n\r\nabc"),
            Err(H1Error::Closed)
        ));
    }

    #[test]
    fn requests_are_rendered_once_with_their_body() {
        let spec = LoadSpec {
            addrs: vec![],
            uri: "/a?b=1".parse().unwrap(),
            host: "h:1".into(),
            method: hyper::http::Method::POST,
            headers: vec![(
                hyper::http::header::CONTENT_TYPE,
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
