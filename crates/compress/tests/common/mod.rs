//! Helpers shared by the compress integration tests: comparing logits, fixed weight draws and
//! corrupting checkpoints.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use refinery_train::data::labelled::{ClassBatch, Encoded};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// Five labelled rows of different lengths (so a batch pads), ids in `1..vocab`, some with
/// segment B, labels 0, 1, 2, 0, 1.
pub fn rows(vocab: usize) -> Vec<Encoded> {
    (0..5)
        .map(|r| {
            let len = 3 + r * 5;
            Encoded {
                ids: (0..len)
                    .map(|i| 1 + ((i * 31 + r * 17) % (vocab - 1)) as u32)
                    .collect(),
                type_ids: (0..len)
                    .map(|i| u32::from(r % 2 == 1 && i > len / 2))
                    .collect(),
                label: (r % 3) as i64,
            }
        })
        .collect()
}

/// [`rows`] padded into one batch (pad id 0).
pub fn batch(vocab: usize) -> ClassBatch {
    let rows = rows(vocab);
    let refs: Vec<&Encoded> = rows.iter().collect();
    ClassBatch::pad(&refs, 0, 0)
}

/// The largest `|a − b|` (same lengths).
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A checkpoint's tensors by name: (dtype, shape, bytes).
pub type Tensors = BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>;

/// One corruption of a checkpoint.
pub type Edit<'a> = Box<dyn Fn(&mut Tensors) + 'a>;

/// Rewrites `dir/model.safetensors` through `edit`.
pub fn edit_weights(dir: &Path, edit: impl FnOnce(&mut Tensors)) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut m: Tensors = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, (t.dtype(), t.shape().to_vec(), t.data().to_vec())))
        .collect();
    edit(&mut m);
    let views: Vec<(String, TensorView)> = m
        .iter()
        .map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &path).unwrap();
}

/// Replaces every (f32) tensor of `dir/model.safetensors` with a fixed draw: in name order,
/// each element is `value(name, shape, draw)`, where `draw()` gives the next uniform value in
/// [-1, 1) of one xorshift stream (burn's init RNG is shared by the tests running in
/// parallel, so its values are not reproducible).
pub fn fixed_draw(
    dir: &Path,
    mut value: impl FnMut(&str, &[usize], &mut dyn FnMut() -> f32) -> f32,
) {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut draw = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    edit_weights(dir, |m| {
        for (name, (dtype, shape, bytes)) in m.iter_mut() {
            let n: usize = shape.iter().product();
            *dtype = Dtype::F32;
            *bytes = (0..n)
                .flat_map(|_| value(name, shape, &mut draw).to_le_bytes())
                .collect();
        }
    });
}
