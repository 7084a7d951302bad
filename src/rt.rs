//! L3: the one place that names runtime items (madsim in simulation, tokio in real mode).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::protocol::frame::{check_size, FrameError};

pub use tokio::net::{TcpListener, TcpStream};
pub use tokio::sync::{mpsc, oneshot, Notify};
pub use tokio::task::JoinHandle;
pub use tokio::time::{sleep, timeout, Instant};

/// Whether this build simulates (`--cfg madsim`, set by `.cargo/config.toml`).
pub const SIMULATION: bool = cfg!(madsim);

/// Spawns a task on the current node.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future)
}

/// Why reading a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadFrameError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads one Kafka frame; `Ok(None)` on a clean end of stream before a frame starts. The size prefix is
/// checked against `max` before the body is allocated.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Option<Vec<u8>>, ReadFrameError> {
    let mut size = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut size[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "end of stream inside a frame size").into());
        }
        got += n;
    }
    let len = check_size(i32::from_be_bytes(size), max)?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(Some(body))
}

/// Writes one Kafka frame and flushes it (madsim moves data only on flush).
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> io::Result<()> {
    w.write_all(&(body.len() as i32).to_be_bytes()).await?;
    w.write_all(body).await?;
    w.flush().await
}

/// Sleeps for a simulated (or real) duration.
pub async fn sleep_for(d: Duration) {
    if !d.is_zero() {
        sleep(d).await;
    }
}

/// Real (wall-clock) time since an arbitrary origin, read with a raw syscall so that madsim's simulated
/// `clock_gettime` does not answer it. For measurements only (wall seconds in a run's summary): nothing
/// that decides what a run does may read it.
pub fn wall_clock() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the pointer we pass, which lives on our stack.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clock_gettime,
            libc::CLOCK_MONOTONIC,
            &mut ts as *mut libc::timespec,
        )
    };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
