//! Cancel requests, sent the way libpq sends them: the request, then wait
//! until the other side closes the connection.
//!
//! tokio-postgres closes its end right after writing the request. PgBouncer
//! 1.18 (Debian 12's) aborts on a cancel connection that is gone before it
//! has handled it (`FATAL … disconnect_client(): bad client state`), taking
//! every client of the pooler with it. The stream below keeps the
//! connection open until the peer closes it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::Host;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{CancelToken, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How long to wait for the peer to close the cancel connection.
const LINGER: Duration = Duration::from_secs(5);

/// Sends a cancel request for `token`'s session to the server `config`
/// names (a single host; with several, the one connected to is unknown and
/// tokio-postgres's own request is used).
pub(crate) async fn send(
    token: &CancelToken,
    tls: &MakeRustlsConnect,
    config: &Config,
) -> Result<(), String> {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let mut tls = tls.clone();
    let sent = match config.get_hosts() {
        [Host::Tcp(host)] => {
            let stream = tokio::net::TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| e.to_string())?;
            let connect = <MakeRustlsConnect as MakeTlsConnect<Linger<tokio::net::TcpStream>>>::make_tls_connect(&mut tls, host)
                .map_err(|e| e.to_string())?;
            tokio::time::timeout(LINGER, token.cancel_query_raw(Linger(stream), connect)).await
        }
        [Host::Unix(dir)] => {
            let path = dir.join(format!(".s.PGSQL.{port}"));
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| e.to_string())?;
            let connect = <MakeRustlsConnect as MakeTlsConnect<Linger<tokio::net::UnixStream>>>::make_tls_connect(&mut tls, "localhost")
                .map_err(|e| e.to_string())?;
            tokio::time::timeout(LINGER, token.cancel_query_raw(Linger(stream), connect)).await
        }
        _ => return token.cancel_query(tls).await.map_err(|e| e.to_string()),
    };
    match sent {
        Ok(result) => result.map_err(|e| e.to_string()),
        // The request was written; the peer just did not hang up in time.
        Err(_) => Ok(()),
    }
}

/// A stream whose shutdown waits for the peer to close.
struct Linger<S>(S);

impl<S: AsyncRead + Unpin> AsyncRead for Linger<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Linger<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    /// Flushes, then reads (and drops) until end of file: the peer has
    /// handled the request and closed.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if Pin::new(&mut self.0).poll_flush(cx)?.is_pending() {
            return Poll::Pending;
        }
        let mut scratch = [0u8; 64];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.0).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => continue,
                // A reset is as good as a close here.
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
