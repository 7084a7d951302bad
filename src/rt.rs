//! L3: the one place that names runtime items (madsim in simulation, tokio in real mode).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::protocol::frame::{check_size, FrameError};

#[cfg(madsim)]
pub use timer::{sleep, timeout, Elapsed, Sleep};
pub use tokio::net::{TcpListener, TcpStream};
pub use tokio::sync::{mpsc, oneshot, Notify};
pub use tokio::task::JoinHandle;
pub use tokio::time::Instant;
#[cfg(not(madsim))]
pub use tokio::time::{sleep, timeout};

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

/// Sleeps and timeouts that give madsim's timer one event per wait.
///
/// madsim's `Sleep` adds a timer event each time it is polled while pending, and its timer queue (a binary
/// heap) keeps every event, cancelled or not, until its deadline. A `timeout` around a request is polled on
/// every step of the exchange, and a `select!` re-polls its sleep each time another branch wakes the task.
/// These wrappers register once per waker; the event they registered still wakes the task at the deadline.
/// In one run of `leader-crash-acks-1` (callgrind) sleeps added 355k timer events before, 231k after.
#[cfg(madsim)]
mod timer {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    /// [`tokio::time::Sleep`] that registers its timer once per waker.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Sleep {
        inner: tokio::time::Sleep,
        registered: Option<Waker>,
    }

    pub fn sleep(duration: Duration) -> Sleep {
        Sleep {
            inner: tokio::time::sleep(duration),
            registered: None,
        }
    }

    impl Future for Sleep {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let this = self.get_mut();
            if this.inner.is_elapsed() {
                return Poll::Ready(());
            }
            if this.registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                return Poll::Pending;
            }
            this.registered = Some(cx.waker().clone());
            Pin::new(&mut this.inner).poll(cx)
        }
    }

    /// The deadline passed before the future completed (tokio's `time::error::Elapsed`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Elapsed;

    impl std::fmt::Display for Elapsed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("deadline has elapsed")
        }
    }

    impl std::error::Error for Elapsed {}

    /// Requires `future` to complete within `duration`; it is polled before the deadline is checked, as
    /// tokio's `timeout` does.
    pub async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, Elapsed> {
        let mut future = std::pin::pin!(future);
        let mut delay = sleep(duration);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = future.as_mut().poll(cx) {
                return Poll::Ready(Ok(out));
            }
            Pin::new(&mut delay).poll(cx).map(|()| Err(Elapsed))
        })
        .await
    }
}

#[cfg(all(test, madsim))]
mod tests {
    use std::time::Duration;

    #[madsim::test]
    async fn a_sleep_polled_many_times_still_ends_at_its_deadline() {
        let start = super::Instant::now();
        let mut sleep = std::pin::pin!(super::sleep(Duration::from_millis(30)));
        let mut ticks = 0;
        loop {
            tokio::select! {
                biased;
                () = &mut sleep => break,
                () = tokio::time::sleep(Duration::from_millis(1)) => ticks += 1,
            }
        }
        assert!(ticks >= 25, "the other branch kept waking the task: {ticks} ticks");
        assert_eq!(start.elapsed().as_millis(), 30);
    }

    #[madsim::test]
    async fn timeout_returns_the_output_before_the_deadline_and_elapsed_after_it() {
        let ok = super::timeout(Duration::from_millis(20), tokio::time::sleep(Duration::from_millis(5))).await;
        assert_eq!(ok, Ok(()));
        let start = super::Instant::now();
        let late = super::timeout(Duration::from_millis(20), tokio::time::sleep(Duration::from_millis(50))).await;
        assert_eq!(late, Err(super::Elapsed));
        assert_eq!(start.elapsed().as_millis(), 20);
    }
}
