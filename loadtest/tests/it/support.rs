//! `TestGateway`: a real tokenim gateway on a free loopback port, and
//! helpers to point the generator at it.

use std::sync::Arc;
use std::time::Duration;

use tokenim_gateway::{Config, Server};
use tokenim_loadtest::runner::Setup;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running gateway; aborted on drop.
pub(crate) struct TestGateway {
    pub(crate) url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _data: tempfile::TempDir,
}

impl TestGateway {
    /// A gateway with default limits except a publish rate high enough for
    /// the tests, changed further by `tweak`. Origins keep their default
    /// (a missing Origin is refused), so every test also checks that the
    /// generator sends an accepted one.
    pub(crate) async fn with(tweak: impl FnOnce(&mut Config)) -> TestGateway {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        let data = tempfile::tempdir().unwrap();
        config.store.path = data.path().to_owned();
        config.log.filter = "warn".into();
        config.limits.publish_rate = 10_000.0;
        config.limits.publish_burst = 10_000.0;
        tweak(&mut config);
        config.validate().expect("test config is valid");
        let server = Server::bind(config).await.expect("gateway binds");
        let url = format!("ws://{}/ws", server.local_addr());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestGateway {
            url,
            stop: Some(stop),
            task: Some(task),
            _data: data,
        }
    }

    pub(crate) async fn spawn() -> TestGateway {
        Self::with(|_| {}).await
    }

    /// The generator's defaults for this gateway.
    pub(crate) fn setup(&self) -> Setup {
        let mut setup = Setup::local(&self.url).expect("loopback URL");
        setup.connect_timeout = Duration::from_secs(5);
        setup
    }

    pub(crate) fn shared(&self, tweak: impl FnOnce(&mut Setup)) -> Arc<Setup> {
        let mut setup = self.setup();
        tweak(&mut setup);
        Arc::new(setup)
    }

    /// Drains and waits for the server task.
    #[allow(dead_code)]
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
