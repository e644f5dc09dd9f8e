//! Where `quper serve` writes its log lines: stderr, in batches.
//!
//! Why: the access log writes a line for every request, and each line was
//! a `write` system call made by the Tokio worker serving the request (3%
//! of the workers' time during an alert storm, docs/performance.md). Lines
//! at info level and below go to a buffer that a background thread writes
//! out every [`INTERVAL`], or at once past [`MAX_BUFFERED`]; a warning or an
//! error is written at once, after every line buffered before it, so a line
//! that explains a failure never waits. The buffer is written out when the
//! process exits normally or panics ([`LogSink::flush`], [`FlushOnDrop`]);
//! a process killed with SIGKILL loses at most the last interval's info
//! lines.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How often buffered lines are written out.
pub const INTERVAL: Duration = Duration::from_millis(50);

/// Buffered bytes past which the line that crosses it writes them out:
/// some 400 ms of access log at 10 000 requests a second, so a worker only
/// writes when the background thread is held up (the disk throttling it),
/// which is also when the log should push back.
pub const MAX_BUFFERED: usize = 1024 * 1024;

/// A log destination shared by every thread; cheap to clone.
#[derive(Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
}

struct Shared {
    /// Lines not yet written. Held only to append or to take them.
    buffer: Mutex<Vec<u8>>,
    /// The destination. Held while writing, so lines leave in the order
    /// they were buffered or written.
    out: Mutex<Box<dyn Write + Send>>,
}

impl LogSink {
    /// A sink writing to `out`, flushed by a background thread every
    /// [`INTERVAL`] for as long as a clone of the sink lives.
    pub fn new(out: impl Write + Send + 'static) -> LogSink {
        let sink = LogSink::unflushed(out);
        let weak: Weak<Shared> = Arc::downgrade(&sink.shared);
        // A log sink without its thread still writes every warning and
        // error at once, and info lines whenever the buffer fills.
        let _ = std::thread::Builder::new()
            .name("quper-log-writer".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(INTERVAL);
                    let Some(shared) = weak.upgrade() else { return };
                    shared.write_out(&[]);
                }
            });
        sink
    }

    /// A sink whose buffer is written out only by [`LogSink::flush`], a full
    /// buffer or an urgent line.
    fn unflushed(out: impl Write + Send + 'static) -> LogSink {
        LogSink {
            shared: Arc::new(Shared {
                buffer: Mutex::new(Vec::with_capacity(MAX_BUFFERED)),
                out: Mutex::new(Box::new(out)),
            }),
        }
    }

    /// Writes out every buffered line.
    pub fn flush(&self) {
        self.shared.write_out(&[]);
    }
}

impl Shared {
    /// Writes the buffered lines, then `line`, in that order.
    fn write_out(&self, line: &[u8]) {
        let mut out = lock(&self.out);
        let buffered = std::mem::take(&mut *lock(&self.buffer));
        // A log line that cannot be written has nowhere else to go.
        if !buffered.is_empty() {
            let _ = out.write_all(&buffered);
        }
        if !line.is_empty() {
            let _ = out.write_all(line);
        }
        let _ = out.flush();
        // Hand the allocation back, unless lines arrived meanwhile.
        let mut buffer = lock(&self.buffer);
        if buffer.is_empty() && buffered.capacity() <= 4 * MAX_BUFFERED {
            let mut buffered = buffered;
            buffered.clear();
            *buffer = buffered;
        }
    }

    fn append(&self, line: &[u8]) {
        let full = {
            let mut buffer = lock(&self.buffer);
            buffer.extend_from_slice(line);
            buffer.len() >= MAX_BUFFERED
        };
        if full {
            self.write_out(&[]);
        }
    }
}

/// A poisoned lock only means a thread panicked mid-write: the bytes are
/// still bytes.
fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One event's writer: `tracing-subscriber` formats a whole line, then
/// writes it through this.
pub struct LineWriter<'a> {
    shared: &'a Shared,
    urgent: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.urgent {
            self.shared.write_out(bytes);
        } else {
            self.shared.append(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LineWriter<'a>;

    /// Without the event's level: written at once.
    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter {
            shared: &self.shared,
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter<'a> {
        LineWriter {
            shared: &self.shared,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

/// Flushes the sink when dropped: at the end of `main`, and while a panic
/// unwinds it.
pub struct FlushOnDrop(pub LogSink);

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.0.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A destination the test can read.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            lock(&self.0).extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&lock(&self.0)).into_owned()
        }
    }

    fn subscriber(sink: LogSink) -> impl tracing::Subscriber {
        tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_max_level(Level::INFO)
            .with_writer(sink)
            .finish()
    }

    #[test]
    fn info_lines_wait_for_a_flush_and_keep_their_order() {
        let out = Captured::default();
        let sink = LogSink::unflushed(out.clone());
        tracing::subscriber::with_default(subscriber(sink.clone()), || {
            tracing::info!("first");
            tracing::info!("second");
        });
        assert_eq!(out.text(), "", "nothing written before a flush");
        sink.flush();
        let text = out.text();
        let (first, second) = (text.find("first"), text.find("second"));
        assert!(first.is_some() && first < second, "{text}");
        assert_eq!(text.lines().count(), 2, "{text}");
    }

    #[test]
    fn a_warning_is_written_at_once_after_the_lines_before_it() {
        let out = Captured::default();
        let sink = LogSink::unflushed(out.clone());
        tracing::subscriber::with_default(subscriber(sink.clone()), || {
            tracing::info!("served");
            tracing::warn!("disk full");
            tracing::error!("gave up");
            tracing::info!("after");
        });
        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].contains("served") && lines[0].contains("INFO"), "{text}");
        assert!(lines[1].contains("disk full") && lines[1].contains("WARN"), "{text}");
        assert!(lines[2].contains("gave up") && lines[2].contains("ERROR"), "{text}");
        sink.flush();
        assert!(out.text().ends_with("after\n"), "{}", out.text());
    }

    #[test]
    fn a_full_buffer_is_written_without_waiting() {
        let out = Captured::default();
        let sink = LogSink::unflushed(out.clone());
        let line = "x".repeat(1_000);
        tracing::subscriber::with_default(subscriber(sink.clone()), || {
            for _ in 0..(MAX_BUFFERED / 1_000 + 1) {
                tracing::info!("{line}");
            }
        });
        assert!(out.text().len() >= MAX_BUFFERED, "{} bytes", out.text().len());
    }

    #[test]
    fn the_background_thread_writes_buffered_lines_out() {
        let out = Captured::default();
        let sink = LogSink::new(out.clone());
        tracing::subscriber::with_default(subscriber(sink.clone()), || tracing::info!("eventually"));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !out.text().contains("eventually") {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(INTERVAL);
        }
    }

    #[test]
    fn dropping_the_guard_flushes() {
        let out = Captured::default();
        let sink = LogSink::unflushed(out.clone());
        let guard = FlushOnDrop(sink.clone());
        tracing::subscriber::with_default(subscriber(sink), || tracing::info!("last words"));
        drop(guard);
        assert!(out.text().contains("last words"), "{}", out.text());
    }
}
