//! The model the trainer updates during distillation: the student plus the learned
//! projections of the hidden-state and embedding losses (TinyBERT's `W_h` and `W_e`), used
//! when the student is narrower than the teacher.
//!
//! Checkpoints (`checkpoint-N/`) hold the student as its own task saves it plus
//! `distill_projections.safetensors` (so a resume continues the projections exactly);
//! `best/` and `final/` hold the student alone, a plain HF checkpoint.

use std::collections::HashMap;
use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::error::DistillError;

/// The projections file inside training checkpoints.
pub const PROJECTIONS_FILE: &str = "distill_projections.safetensors";

/// Student + projections.
#[derive(Module, Debug)]
pub struct DistillModel<M: Module> {
    pub student: M,
    /// `W_h`: student width → teacher width, shared by every mapped layer (hidden loss).
    pub hidden_proj: Option<Linear>,
    /// `W_e`: the same for the embeddings (embedding loss).
    pub embedding_proj: Option<Linear>,
}

/// Which projections a distillation needs: `(student width, teacher width)` of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Projections {
    pub hidden: Option<(usize, usize)>,
    pub embedding: Option<(usize, usize)>,
}

fn linear(dims: Option<(usize, usize)>, device: &Device) -> Option<Linear> {
    dims.map(|(d_in, d_out)| LinearConfig::new(d_in, d_out).init(device))
}

impl<M: Module> DistillModel<M> {
    /// Wraps `student` with freshly initialised projections (burn's default Linear init:
    /// Kaiming-uniform weights; the caller seeds the device RNG).
    pub fn new(student: M, p: Projections, device: &Device) -> Self {
        Self {
            student,
            hidden_proj: linear(p.hidden, device),
            embedding_proj: linear(p.embedding, device),
        }
    }

    /// The projections as `(name, shape, values)`.
    fn named(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut out = Vec::new();
        for (name, l) in [
            ("hidden_proj", &self.hidden_proj),
            ("embedding_proj", &self.embedding_proj),
        ] {
            let Some(l) = l else { continue };
            let w = l.weight.val();
            out.push((
                format!("{name}.weight"),
                w.dims().to_vec(),
                w.into_data().iter::<f32>().collect(),
            ));
            if let Some(b) = &l.bias {
                let b = b.val();
                out.push((
                    format!("{name}.bias"),
                    b.dims().to_vec(),
                    b.into_data().iter::<f32>().collect(),
                ));
            }
        }
        out
    }

    /// Writes the projections to `dir/distill_projections.safetensors` (nothing when there
    /// are none).
    pub fn save_projections(&self, dir: &Path) -> Result<(), DistillError> {
        let tensors = self.named();
        if tensors.is_empty() {
            return Ok(());
        }
        let path = dir.join(PROJECTIONS_FILE);
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
            .into_iter()
            .map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
            .collect();
        let st_err = |e: safetensors::SafeTensorError| DistillError::Cache {
            path: path.clone(),
            message: e.to_string(),
        };
        let views = bytes
            .iter()
            .map(|(n, s, b)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(st_err)?;
        safetensors::serialize_to_file(views, Some(HashMap::new()), &path).map_err(st_err)
    }

    /// Reads the projections saved by [`DistillModel::save_projections`] into this model's
    /// (same shapes; a projection the model has must be in the file).
    pub fn load_projections(mut self, dir: &Path, device: &Device) -> Result<Self, DistillError> {
        if self.hidden_proj.is_none() && self.embedding_proj.is_none() {
            return Ok(self);
        }
        let path = dir.join(PROJECTIONS_FILE);
        let bytes = std::fs::read(&path).map_err(|e| DistillError::io(&path, e))?;
        let bad = |message: String| DistillError::Cache {
            path: path.clone(),
            message,
        };
        let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let read = |key: &str, dims: &[usize]| -> Result<Vec<f32>, DistillError> {
            let v = st
                .tensor(key)
                .map_err(|_| bad(format!("no tensor {key:?}")))?;
            if v.dtype() != Dtype::F32 || v.shape() != dims {
                return Err(bad(format!(
                    "{key}: {:?} {:?}, expected F32 {dims:?}",
                    v.dtype(),
                    v.shape()
                )));
            }
            Ok(v.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        };
        for (name, slot) in [
            ("hidden_proj", &mut self.hidden_proj),
            ("embedding_proj", &mut self.embedding_proj),
        ] {
            let Some(l) = slot else { continue };
            let dims = l.weight.val().dims();
            let w = read(&format!("{name}.weight"), &dims)?;
            let mut p = Param::from_tensor(Tensor::from_data(TensorData::new(w, dims), device));
            p.id = l.weight.id;
            l.weight = p;
            if let Some(b) = &mut l.bias {
                let dims = b.val().dims();
                let v = read(&format!("{name}.bias"), &dims)?;
                let mut p = Param::from_tensor(Tensor::from_data(TensorData::new(v, dims), device));
                p.id = b.id;
                *b = p;
            }
        }
        Ok(self)
    }
}
