//! Webhooks: `[[route.rollout.webhook]]` (rollout events, gates and
//! `drained`) and global `[[webhook]]` (`drained` for every pool).

use super::{Check, SECOND};
use crate::config::file::{Str, WebhookFile};
use crate::config::model::{WebhookKind, WebhookSpec};

impl Check<'_> {
    /// Global `[[webhook]]`s: only `on = "drained"`, since every other
    /// event belongs to a route's rollout.
    pub(super) fn global_webhooks(&mut self, hooks: &[WebhookFile]) -> Vec<WebhookSpec> {
        let mut out = Vec::new();
        for (i, w) in hooks.iter().enumerate() {
            let key = format!("webhook[{i}]");
            let Some(hook) = self.webhook(w, &key) else {
                continue;
            };
            if hook.on != WebhookKind::Drained {
                let msg = format!(
                    "a global [[webhook]] takes on = \"drained\"; {:?} belongs in a route's [[route.rollout.webhook]]",
                    w.on.get_ref()
                );
                self.err(w.on.span(), format!("{key}.on"), msg);
                continue;
            }
            out.push(hook);
        }
        out
    }

    pub(super) fn webhook(&mut self, w: &WebhookFile, key: &str) -> Option<WebhookSpec> {
        let on = match w.on.get_ref().as_str() {
            "pre-rollout" => Some(WebhookKind::PreRollout),
            "rollout" => Some(WebhookKind::Rollout),
            "confirm-promotion" => Some(WebhookKind::ConfirmPromotion),
            "post-rollout" => Some(WebhookKind::PostRollout),
            "rollback" => Some(WebhookKind::Rollback),
            "event" => Some(WebhookKind::Event),
            "drained" => Some(WebhookKind::Drained),
            other => {
                let msg = format!(
                    "unknown webhook {other:?}; expected pre-rollout, rollout, confirm-promotion, \
                     post-rollout, rollback, event or drained"
                );
                self.err(w.on.span(), format!("{key}.on"), msg);
                None
            }
        };
        self.url(&w.url, &format!("{key}.url"));
        Some(WebhookSpec {
            on: on?,
            url: w.url.get_ref().clone(),
            timeout: self.nonzero_duration(&w.timeout, &format!("{key}.timeout"), 5 * SECOND),
            retries: w.retries.unwrap_or(2),
        })
    }

    pub(super) fn url(&mut self, url: &Str, key: &str) {
        let u = url.get_ref();
        let rest = u
            .strip_prefix("http://")
            .or_else(|| u.strip_prefix("https://"));
        if !matches!(rest, Some(r) if !r.is_empty() && !r.starts_with('/')) {
            self.err(
                url.span(),
                key,
                format!("{u:?} must be an http:// or https:// URL"),
            );
        }
    }
}
