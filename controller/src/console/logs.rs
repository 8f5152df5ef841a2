//! Where the controller's logs go during `demo` and `run`: everything (at
//! the `--log` filter) to `runs/<id>/controller.log`, and to stderr only with
//! `-v` or an explicit `--log`, printed above the progress bar
//! ([`indicatif::ProgressBar::suspend`]) so the bar never breaks into
//! fragments. Lines logged before the run directory exists are kept in a
//! bounded buffer and written first. rumqttd's "no-connection id N is
//! already gone" (an ERROR it logs for every ordinary disconnect) is dropped.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};

use indicatif::ProgressBar;
use tracing::{Event, Metadata};
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

/// Log bytes kept in memory until the run directory exists; past this the
/// oldest are not kept (the count is written into the file).
const EARLY_BUFFER: usize = 1 << 20;

/// The default `--log` filter.
pub const DEFAULT_FILTER: &str = "info,rumqttd=warn";

/// Why the logs could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid --log filter {filter:?}: {reason}")]
    Filter { filter: String, reason: String },
    #[error("cannot open the log file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

enum Sink {
    Early { buf: Vec<u8>, lost: u64 },
    File(File),
}

static SINK: OnceLock<Mutex<Sink>> = OnceLock::new();
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs the run logging: the file sink (attached later with
/// [`attach`]) and, when `to_stderr`, stderr above the progress bar.
pub fn init(filter: &str, to_stderr: bool) -> Result<(), LogError> {
    let parse = || {
        EnvFilter::try_new(filter).map_err(|e| LogError::Filter {
            filter: filter.to_string(),
            reason: e.to_string(),
        })
    };
    let _ = SINK.set(Mutex::new(Sink::Early {
        buf: Vec::new(),
        lost: 0,
    }));
    let file = fmt::layer()
        .with_ansi(false)
        .with_writer(|| FileWriter)
        .with_filter(parse()?)
        .with_filter(Quiet);
    let stderr = to_stderr.then(|| {
        fmt::layer()
            .with_ansi(rackpong_agent::cli::use_colour(
                std::io::IsTerminal::is_terminal(&std::io::stderr()),
                std::env::var_os("NO_COLOR").as_deref(),
            ))
            .with_writer(|| AboveBar)
    });
    let stderr = match stderr {
        Some(l) => Some(l.with_filter(parse()?).with_filter(Quiet)),
        None => None,
    };
    let _ = tracing_subscriber::registry()
        .with(file)
        .with(stderr)
        .try_init();
    Ok(())
}

/// From now on the log goes to `path` (created, appended to), after what
/// was logged so far. Does nothing when [`init`] was not called (tests
/// driving a run in-process).
pub fn attach(path: &Path) -> Result<(), LogError> {
    let Some(sink) = SINK.get() else {
        return Ok(());
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| LogError::File {
            path: path.display().to_string(),
            source,
        })?;
    let mut s = lock(sink);
    if let Sink::Early { buf, lost } = &*s {
        if *lost > 0 {
            let _ = writeln!(file, "({lost} early log bytes not kept)");
        }
        let _ = file.write_all(buf);
    }
    *s = Sink::File(file);
    Ok(())
}

/// The bar that stderr logs and fault lines are printed above, while one shows.
pub fn set_bar(bar: Option<ProgressBar>) {
    *lock(&BAR) = bar;
}

/// Runs `f` with the progress bar (if any) cleared, then redraws it.
pub fn above_bar<R>(f: impl FnOnce() -> R) -> R {
    let bar = lock(&BAR).clone();
    match bar {
        Some(b) => b.suspend(f),
        None => f(),
    }
}

struct FileWriter;

impl Write for FileWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let Some(sink) = SINK.get() else {
            return Ok(data.len());
        };
        match &mut *lock(sink) {
            Sink::File(f) => f.write_all(data)?,
            Sink::Early { buf, lost } => {
                if buf.len() + data.len() <= EARLY_BUFFER {
                    buf.extend_from_slice(data);
                } else {
                    *lost += data.len() as u64;
                }
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes one formatted event to stderr with the bar out of the way.
struct AboveBar;

impl Write for AboveBar {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        above_bar(|| std::io::stderr().lock().write_all(data))?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Drops the log lines that are noise, not news: rumqttd's ERROR for a
/// connection that closed normally.
struct Quiet;

impl<S> Filter<S> for Quiet {
    fn enabled(&self, _meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _cx: &Context<'_, S>) -> bool {
        !is_noise(event)
    }
}

/// rumqttd's "no-connection id N is already gone".
pub fn is_noise(event: &Event<'_>) -> bool {
    if !event.metadata().target().starts_with("rumqttd") {
        return false;
    }
    let mut v = Message(String::new());
    event.record(&mut v);
    is_noise_message(&v.0)
}

/// The text test of [`is_noise`].
pub fn is_noise_message(message: &str) -> bool {
    message.starts_with("no-connection id ") && message.ends_with(" is already gone")
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}
