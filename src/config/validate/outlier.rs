//! `[pool.outlier]`: passive outlier detection settings and their defaults.

use super::{Check, SECOND};
use crate::config::file::OutlierFile;
use crate::config::model::OutlierSpec;

impl Check<'_> {
    /// Defaults follow Envoy: 5 failures in a row, 30s base ejection,
    /// 300s cap; at most half the pool ejected.
    pub(super) fn outlier(&mut self, o: &OutlierFile, key: &str) -> OutlierSpec {
        let consecutive_failures = match &o.consecutive_failures {
            Some(n) if *n.get_ref() == 0 => {
                let msg = "must be at least 1";
                self.err(n.span(), format!("{key}.consecutive_failures"), msg);
                5
            }
            Some(n) => *n.get_ref(),
            None => 5,
        };
        let max_ejected_percent = match &o.max_ejected_percent {
            Some(n) if *n.get_ref() > 100 => {
                let msg = "must be a percent, 0 to 100";
                self.err(n.span(), format!("{key}.max_ejected_percent"), msg);
                50
            }
            Some(n) => *n.get_ref(),
            None => 50,
        };
        let base_ejection = self.nonzero_duration(
            &o.base_ejection,
            &format!("{key}.base_ejection"),
            30 * SECOND,
        );
        let max_key = format!("{key}.max_ejection");
        let max_ejection = self.nonzero_duration(&o.max_ejection, &max_key, 300 * SECOND);
        let max_ejection = match &o.max_ejection {
            Some(at) if max_ejection < base_ejection => {
                self.err(at.span(), max_key, "must not be shorter than base_ejection");
                base_ejection
            }
            _ => max_ejection.max(base_ejection),
        };
        OutlierSpec {
            consecutive_failures,
            base_ejection,
            max_ejection,
            max_ejected_percent,
        }
    }
}
