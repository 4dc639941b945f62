//! Learning-rate schedule: linear warmup, then cosine or linear decay to `min_lr`.

use serde::{Deserialize, Serialize};

/// Shape of the decay after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decay {
    Cosine,
    Linear,
}

/// `lr(step)` for optimizer steps `0..total_steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    pub peak_lr: f64,
    pub min_lr: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
    pub decay: Decay,
}

impl LrSchedule {
    /// The learning rate used for optimizer step `step` (0-based).
    ///
    /// Warmup: `peak * (step + 1) / warmup` (so step 0 is not a wasted zero-lr step, as
    /// nanoGPT). Then the progress `p` in `[0, 1]` over the remaining steps gives
    /// `min + (peak - min) * c`, with `c = (1 + cos(pi p)) / 2` (cosine) or `1 - p` (linear).
    /// After `total_steps` the rate stays at `min_lr`.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.peak_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let p = ((step - self.warmup_steps) as f64 / decay_steps as f64).min(1.0);
        let c = match self.decay {
            Decay::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * p).cos()),
            Decay::Linear => 1.0 - p,
        };
        self.min_lr + (self.peak_lr - self.min_lr) * c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_and_linear() {
        let mut s = LrSchedule {
            peak_lr: 1.0,
            min_lr: 0.1,
            warmup_steps: 4,
            total_steps: 14,
            decay: Decay::Cosine,
        };
        assert_eq!(s.lr_at(0), 0.25);
        assert_eq!(s.lr_at(3), 1.0);
        assert_eq!(s.lr_at(4), 1.0);
        assert!((s.lr_at(9) - 0.55).abs() < 1e-12); // half way: (1 + 0.1) / 2
        assert!((s.lr_at(14) - 0.1).abs() < 1e-12);
        assert!((s.lr_at(100) - 0.1).abs() < 1e-12);
        s.decay = Decay::Linear;
        assert!((s.lr_at(6) - (0.1 + 0.9 * 0.8)).abs() < 1e-12);
    }
}
