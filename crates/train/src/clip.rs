//! Global-norm gradient clipping, as PyTorch's `torch.nn.utils.clip_grad_norm_`.
//!
//! burn's `GradientClipping::Norm` clips each tensor by its own norm; this clips all gradients
//! together: `total = sqrt(Σ‖g‖²)`, and when `total > max_norm` every gradient is scaled by
//! `max_norm / (total + 1e-6)`.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    sum: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let sq = g.square().sum(); // [1]
            self.sum = Some(match self.sum.take() {
                Some(s) => s + sq,
                None => sq,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// The global L2 norm of the gradients of `module`'s parameters.
pub fn grad_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    let mut v = SquaredNorm { grads, sum: None };
    module.visit(&mut v);
    v.sum
        .map(|s| f64::from(s.into_scalar::<f32>()).sqrt())
        .unwrap_or(0.0)
}

/// Clips in place to a global norm of `max_norm`; returns the norm before clipping.
pub fn clip_grad_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let total = grad_norm(module, grads);
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        module.visit(&mut Scale {
            grads,
            factor: coef,
        });
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::Device;

    #[test]
    fn clips_all_tensors_to_one_global_norm() {
        let dev = Device::flex().autodiff();
        let lin = LinearConfig::new(3, 2).init(&dev);
        let x = Tensor::<2>::ones([4, 3], &dev);
        let loss = lin.forward(x).sum().mul_scalar(10.0);
        let mut grads = GradientsParams::from_grads(loss.backward(), &lin);
        // dL/dW = 10 * 4 = 40 for all 6 entries, dL/db = 40 for both: norm 40 * sqrt(8).
        let before = clip_grad_norm(&lin, &mut grads, 1.0);
        assert!((before - 40.0 * 8f64.sqrt()).abs() < 1e-3, "{before}");
        let after = grad_norm(&lin, &grads);
        assert!((after - 1.0).abs() < 1e-5, "{after}");
        // Below the threshold nothing changes.
        assert!((clip_grad_norm(&lin, &mut grads, 2.0) - after).abs() < 1e-9);
        assert!((grad_norm(&lin, &grads) - after).abs() < 1e-9);
    }
}
