//! Config reload: read and validate the whole file off to the side, bind
//! any new listeners, then publish. Any failure leaves the old config
//! serving, is logged, counted and returned.

use std::sync::Arc;

use crate::config::{self, ConfigError};

use super::events::EventKind;
use super::{Control, ControlError};

impl Control {
    /// Reloads the config file now (SIGHUP, `POST /api/v1/reload`).
    pub async fn reload(&self) -> Result<(), ControlError> {
        self.reload_file(false).await.map(|_| ())
    }

    /// Reloads only if the file's text changed since it was last read (the
    /// watcher: directory events that did not touch the file are noise).
    /// Returns whether a reload was attempted.
    pub async fn reload_if_changed(&self) -> Result<bool, ControlError> {
        self.reload_file(true).await
    }

    async fn reload_file(&self, only_if_changed: bool) -> Result<bool, ControlError> {
        let mut inner = self.inner.lock().await;
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(source) => {
                let path = self.path.clone();
                return Err(self.rejected(ConfigError::Read { path, source }.into()));
            }
        };
        if only_if_changed && inner.last_text.as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        inner.last_text = Some(text.clone());
        let config = config::parse(&text, &self.path).map_err(|e| self.rejected(e.into()))?;
        crate::tls::preflight(&config).map_err(|e| {
            self.rejected(ControlError::Listener(std::io::Error::other(e.to_string())))
        })?;
        let plan = inner
            .listeners
            .plan(&config.listeners)
            .map_err(|e| self.rejected(ControlError::Listener(e)))?;

        let old = Arc::clone(&self.routing.load().config);
        let mut notes = Vec::new();
        if old.admin != config.admin {
            notes.push("[admin] changes take effect on restart");
        }
        if old.proxy.state_dir != config.proxy.state_dir
            || old.proxy.workers != config.proxy.workers
        {
            notes.push("proxy.state_dir and proxy.workers take effect on restart");
        }
        let summary = format!(
            "config reloaded from {} ({} listeners, {} pools, {} routes){}{}",
            self.path.display(),
            config.listeners.len(),
            config.pools.len(),
            config.routes.len(),
            if notes.is_empty() { "" } else { "; " },
            notes.join("; "),
        );
        // The controller publishes the config with every route's traffic
        // in one snapshot; routes whose `pool` changed start rolling out.
        self.controller.reconfigure(Arc::new(config)).await?;
        inner.listeners.apply(plan);
        self.telemetry.record_reload(true);
        self.events.record(EventKind::Reload, None, summary);
        Ok(true)
    }

    /// Counts, logs and records a rejected reload; the old config stays.
    fn rejected(&self, error: ControlError) -> ControlError {
        self.telemetry.record_reload(false);
        tracing::error!("config reload rejected, old config keeps serving:\n{error}");
        self.events.record(
            EventKind::ReloadError,
            None,
            format!("reload rejected, old config keeps serving: {error}"),
        );
        error
    }
}
