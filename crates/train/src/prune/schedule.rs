//! Zhu & Gupta's (2017) cubic sparsity schedule and the `[prune]` section that sets it.
//!
//! With final sparsity `s_f`, initial sparsity `s_i`, pruning from step `t_0` to step `t_e`:
//!
//! ```text
//! s_t = s_f + (s_i − s_f) · (1 − (t − t_0) / (t_e − t_0))³      for t_0 ≤ t ≤ t_e
//! ```
//!
//! (`s_i` before `t_0`, `s_f` after `t_e`; Zhu & Gupta write `t_e − t_0 = n·Δt`). The masks are
//! recomputed every `Δt` optimizer steps, at `t = t_0 + k·Δt` (`k ≥ 0`) and at `t_e`, so the
//! last recomputation reaches `s_f` exactly; with `t_0 = 0` the first masks (at `s_i`) are
//! taken from the starting weights, before the first step. `s_i = s_f` keeps a one-shot
//! pruned model's zeros through recovery fine-tuning. Pruning fast early, when there are many
//! redundant weights, and slowly near the end gives the network time to recover.

use serde::{Deserialize, Serialize};

use super::select::{Scope, Sparsity};
use crate::config::bad;
use crate::error::TrainError;

/// `[prune]` of `train.toml` (fine-tuning with gradual magnitude pruning), as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PruneSection {
    /// The final sparsity `s_f`, in `[0, 1)` (required).
    pub sparsity: Option<f64>,
    /// The sparsity at the first pruning step, `s_i` (default 0).
    pub initial_sparsity: f64,
    /// `t_0` as an optimizer step (default: `start_fraction`).
    pub start_step: Option<usize>,
    /// `t_0` as a share of the run (default 0).
    pub start_fraction: Option<f64>,
    /// `t_e` as an optimizer step (default: `end_fraction`).
    pub end_step: Option<usize>,
    /// `t_e` as a share of the run (default 0.75: the last quarter recovers at `s_f`).
    pub end_fraction: Option<f64>,
    /// `Δt`: optimizer steps between mask updates (default 10).
    pub every: usize,
    /// `global` (one threshold) or `layer` (the same sparsity per tensor).
    pub scope: Scope,
    /// Prune the classifier/score head too (default: it stays dense).
    pub include_head: bool,
}

impl Default for PruneSection {
    fn default() -> Self {
        Self {
            sparsity: None,
            initial_sparsity: 0.0,
            start_step: None,
            start_fraction: None,
            end_step: None,
            end_fraction: None,
            every: 10,
            scope: Scope::Global,
            include_head: false,
        }
    }
}

/// A point of the run: an optimizer step, or a share of the run's steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunPoint {
    Step(usize),
    /// In `[0, 1]`.
    Fraction(f64),
}

impl RunPoint {
    /// The step in a run of `total` steps (fractions round to the nearest step).
    pub fn step(self, total: usize) -> usize {
        match self {
            RunPoint::Step(s) => s,
            RunPoint::Fraction(f) => (f * total as f64).round() as usize,
        }
    }
}

/// A checked `[prune]` section (see the module docs for the schedule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradualPruning {
    pub final_sparsity: Sparsity,
    pub initial_sparsity: Sparsity,
    pub start: RunPoint,
    pub end: RunPoint,
    /// `Δt`, at least 1.
    pub every: usize,
    pub scope: Scope,
    pub include_head: bool,
}

/// The schedule's steps in a run of known length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResolvedSchedule {
    pub initial: f64,
    pub target: f64,
    /// `t_0`.
    pub start: usize,
    /// `t_e`, `> start`.
    pub end: usize,
    pub every: usize,
}

impl PruneSection {
    /// Validates every key once; `file` names the config in errors (`prune.KEY`).
    pub fn check(&self, file: &str) -> Result<GradualPruning, TrainError> {
        let sparsity = |key: &str, v: f64| {
            Sparsity::new(v).map_err(|_| bad(file, key, format!("{v} must be in [0, 1)")))
        };
        let s = self
            .sparsity
            .ok_or_else(|| bad(file, "prune.sparsity", "not set (the final sparsity)"))?;
        let final_sparsity = sparsity("prune.sparsity", s)?;
        let initial_sparsity = sparsity("prune.initial_sparsity", self.initial_sparsity)?;
        if initial_sparsity > final_sparsity {
            return Err(bad(
                file,
                "prune.initial_sparsity",
                format!(
                    "{} exceeds prune.sparsity {} (the schedule only adds zeros)",
                    self.initial_sparsity, s
                ),
            ));
        }
        let point = |step: Option<usize>, fraction: Option<f64>, name: &str, default: f64| match (
            step, fraction,
        ) {
            (Some(_), Some(_)) => Err(bad(
                file,
                &format!("prune.{name}_step"),
                format!("set prune.{name}_step or prune.{name}_fraction, not both"),
            )),
            (Some(s), None) => Ok(RunPoint::Step(s)),
            (None, f) => {
                let f = f.unwrap_or(default);
                if f.is_finite() && (0.0..=1.0).contains(&f) {
                    Ok(RunPoint::Fraction(f))
                } else {
                    Err(bad(
                        file,
                        &format!("prune.{name}_fraction"),
                        format!("{f} must be in [0, 1]"),
                    ))
                }
            }
        };
        let start = point(self.start_step, self.start_fraction, "start", 0.0)?;
        let end = point(self.end_step, self.end_fraction, "end", 0.75)?;
        if self.every == 0 {
            return Err(bad(file, "prune.every", "must be at least 1"));
        }
        let checked = GradualPruning {
            final_sparsity,
            initial_sparsity,
            start,
            end,
            every: self.every,
            scope: self.scope,
            include_head: self.include_head,
        };
        // Points given as steps can be checked against each other now; against the run's
        // length when it is known ([`GradualPruning::resolve`]).
        match (start, end) {
            (RunPoint::Step(a), RunPoint::Step(b)) if b <= a => {
                return Err(bad(
                    file,
                    "prune.end_step",
                    format!("{b} must be after prune.start_step {a}"),
                ));
            }
            (RunPoint::Fraction(a), RunPoint::Fraction(b)) if b <= a => {
                return Err(bad(
                    file,
                    "prune.end_fraction",
                    format!("{b} must be after prune.start_fraction {a}"),
                ));
            }
            _ => {}
        }
        Ok(checked)
    }
}

impl GradualPruning {
    /// Whether `t_0` is step 0 whatever the run's length (the first masks come from the
    /// starting weights).
    pub fn starts_at_zero(&self) -> bool {
        matches!(self.start, RunPoint::Step(0)) || self.start == RunPoint::Fraction(0.0)
    }

    /// The schedule in a run of `total_steps` optimizer steps; errors name the `[prune]` key.
    pub fn resolve(&self, total_steps: usize) -> Result<ResolvedSchedule, TrainError> {
        let start = self.start.step(total_steps);
        let end = self.end.step(total_steps);
        let key = |p: RunPoint, name: &str| match p {
            RunPoint::Step(_) => format!("prune.{name}_step"),
            RunPoint::Fraction(_) => format!("prune.{name}_fraction"),
        };
        if end > total_steps {
            return Err(TrainError::InvalidConfig(format!(
                "{}: step {end} is past the run's {total_steps} steps",
                key(self.end, "end")
            )));
        }
        if end <= start {
            return Err(TrainError::InvalidConfig(format!(
                "{}: step {end} must be after the start, step {start} (run of {total_steps} \
                 steps)",
                key(self.end, "end")
            )));
        }
        Ok(ResolvedSchedule {
            initial: self.initial_sparsity.get(),
            target: self.final_sparsity.get(),
            start,
            end,
            every: self.every,
        })
    }
}

impl ResolvedSchedule {
    /// `s_t` (module docs): `s_i` before `t_0`, `s_f` from `t_e` on.
    pub fn sparsity_at(&self, t: usize) -> f64 {
        if t <= self.start {
            return self.initial;
        }
        if t >= self.end {
            return self.target;
        }
        let progress = (t - self.start) as f64 / (self.end - self.start) as f64;
        self.target + (self.initial - self.target) * (1.0 - progress).powi(3)
    }

    /// Whether the masks are recomputed after optimizer step `t` (`t_0 + k·Δt` up to `t_e`,
    /// and `t_e`).
    pub fn prunes_at(&self, t: usize) -> bool {
        t >= self.start.max(1)
            && t <= self.end
            && ((t - self.start) % self.every == 0 || t == self.end)
    }

    /// Whether the model after step `t` is at the final sparsity.
    pub fn done_at(&self, t: usize) -> bool {
        t >= self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(initial: f64, start: usize, end: usize, every: usize) -> ResolvedSchedule {
        ResolvedSchedule {
            initial,
            target: 0.8,
            start,
            end,
            every,
        }
    }

    /// s_t = 0.8 + (s_i − 0.8)(1 − (t − 10)/40)³, by hand.
    #[test]
    fn sparsity_follows_the_cubic_formula() {
        let s = schedule(0.0, 10, 50, 10);
        let cases = [
            (0, 0.0),
            (10, 0.0),
            (20, 0.4625), // 0.8 · (1 − 0.75³)
            (30, 0.7),    // 0.8 · (1 − 0.5³)
            (40, 0.7875), // 0.8 · (1 − 0.25³)
            (50, 0.8),
            (70, 0.8),
        ];
        for (t, want) in cases {
            assert!((s.sparsity_at(t) - want).abs() < 1e-12, "t {t}");
        }
        let s = schedule(0.2, 10, 50, 10);
        assert_eq!(s.sparsity_at(5), 0.2);
        assert!((s.sparsity_at(30) - 0.725).abs() < 1e-12); // 0.8 − 0.6 · 0.5³
    }

    #[test]
    fn masks_update_every_delta_t_and_at_the_end() {
        let s = schedule(0.0, 10, 45, 10);
        let at: Vec<usize> = (0..60).filter(|&t| s.prunes_at(t)).collect();
        assert_eq!(at, [10, 20, 30, 40, 45]);
        let s = schedule(0.0, 0, 20, 5);
        let at: Vec<usize> = (0..60).filter(|&t| s.prunes_at(t)).collect();
        assert_eq!(at, [5, 10, 15, 20], "step 0 is before any optimizer step");
        assert!(!s.done_at(19) && s.done_at(20));
    }

    fn section(text: &str) -> Result<GradualPruning, TrainError> {
        let p: PruneSection = toml::from_str(text).unwrap();
        p.check("t.toml")
    }

    #[test]
    fn points_resolve_against_the_run() {
        let p = section("sparsity = 0.5\nstart_fraction = 0.1\n").unwrap();
        let r = p.resolve(100).unwrap();
        assert_eq!((r.start, r.end, r.every), (10, 75, 10), "default end 0.75");
        let p = section("sparsity = 0.5\nend_step = 120\n").unwrap();
        let e = p.resolve(100).unwrap_err().to_string();
        assert!(e.contains("prune.end_step") && e.contains("past"), "{e}");
        let p = section("sparsity = 0.5\nstart_step = 80\nend_fraction = 0.5\n").unwrap();
        let e = p.resolve(100).unwrap_err().to_string();
        assert!(e.contains("prune.end_fraction"), "{e}");
    }

    #[test]
    fn bad_sections_name_the_key() {
        let cases = [
            ("initial_sparsity = 0.1\n", "prune.sparsity"),
            ("sparsity = 1.0\n", "prune.sparsity"),
            ("sparsity = -0.1\n", "prune.sparsity"),
            (
                "sparsity = 0.5\ninitial_sparsity = 0.6\n",
                "prune.initial_sparsity",
            ),
            (
                "sparsity = 0.5\nstart_step = 1\nstart_fraction = 0.1\n",
                "prune.start_step",
            ),
            ("sparsity = 0.5\nend_fraction = 1.5\n", "prune.end_fraction"),
            ("sparsity = 0.5\nevery = 0\n", "prune.every"),
            (
                "sparsity = 0.5\nstart_step = 10\nend_step = 10\n",
                "prune.end_step",
            ),
            (
                "sparsity = 0.5\nstart_fraction = 0.8\n",
                "prune.end_fraction",
            ),
        ];
        for (text, key) in cases {
            let e = section(text).unwrap_err().to_string();
            assert!(e.contains(&format!("t.toml: {key}")), "{text:?}: {e}");
        }
    }
}
