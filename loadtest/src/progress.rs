//! The live progress line (indicatif) and the [`Control`] every scenario
//! gets: the Ctrl-C signal and where to print.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the progress line is redrawn.
pub const TICK: Duration = Duration::from_millis(500);

/// What a scenario needs from the command line besides its parameters.
#[derive(Debug, Clone)]
pub struct Control {
    /// Cancelled on Ctrl-C: the scenario ends its measured phase early,
    /// tears down and still reports.
    pub interrupt: CancellationToken,
    /// The live line (hidden in tests and with `--no-progress`).
    pub progress: Progress,
}

impl Control {
    /// No progress line, no interrupt: for tests and library use.
    pub fn quiet() -> Control {
        Control {
            interrupt: CancellationToken::new(),
            progress: Progress::hidden(),
        }
    }
}

/// A one-line status on stderr, redrawn in place.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A line on stderr (indicatif hides it when stderr is not a
    /// terminal).
    pub fn stderr() -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                .expect("static template")
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
        );
        Progress { bar }
    }

    /// Draws nothing.
    pub fn hidden() -> Progress {
        Progress {
            bar: ProgressBar::hidden(),
        }
    }

    /// Replaces the line's text.
    pub fn set(&self, text: String) {
        self.bar.set_message(text);
        self.bar.tick();
    }

    /// Prints a line to stderr above the progress line.
    pub fn note(&self, text: &str) {
        self.bar.suspend(|| eprintln!("{text}"));
    }

    /// Removes the line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Redraws the line every [`TICK`] with `line(elapsed)` until the
    /// returned guard is dropped.
    pub fn ticker<F>(&self, mut line: F) -> Ticker
    where
        F: FnMut(Duration) -> String + Send + 'static,
    {
        let progress = self.clone();
        let start = Instant::now();
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                progress.set(line(start.elapsed()));
            }
        });
        Ticker { task }
    }
}

/// Stops its progress ticker when dropped.
#[derive(Debug)]
pub struct Ticker {
    task: JoinHandle<()>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
