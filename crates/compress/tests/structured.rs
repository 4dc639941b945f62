//! Structured pruning (`refinery_compress::structured`) on the tiny BERT classifier made by
//! transformers (crates/model/tests/fixtures/bert_cls_tiny: 2 layers, 4 heads of 8, 64 FFN
//! neurons, 3 labels):
//! - removing heads or neurons gives the logits of the full model with their output weights
//!   zeroed (f32, tolerance 1e-5): the removal is exact;
//! - the gate gradients (the importance) equal central finite differences of the loss when the
//!   head's / neuron's output is scaled by `1 ± ε`;
//! - the config (`pruned_heads`, `intermediate_size`), the report, pruning twice, and the bad
//!   inputs.
//! - `export_pruned_for_hf` (env-gated; scripts/hf-interop.sh) writes pruned checkpoints with
//!   refinery's logits for transformers 4.x to load.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use common::max_diff;
use refinery_compress::prune::Sparsity;
use refinery_compress::structured::{
    gate_gradients, prune_structured, Criterion, Structure, StructuredOptions, StructuredReport,
};
use refinery_model::hf_classify::load_classifier;
use refinery_model::OutputOptions;
use refinery_train::data::labelled::ClassBatch;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/bert_cls_tiny")
}

/// The shared test rows (ids in 1..128, the fixture's vocabulary), in one batch.
fn batch() -> ClassBatch {
    common::batch(128)
}

fn logits(dir: &Path, b: &ClassBatch) -> Vec<f32> {
    let dev = Device::flex();
    let (_, model) = load_classifier(dir, &dev).unwrap();
    let (ids, types, mask) = b.tensors(&dev);
    model
        .forward(ids, Some(types), mask, OutputOptions::default())
        .logits
        .into_data()
        .iter::<f32>()
        .collect()
}

/// Mean cross-entropy of `logits [B, C]` for the batch labels, on the host.
fn loss(logits: &[f32], b: &ClassBatch) -> f64 {
    let c = logits.len() / b.labels.len();
    let mut total = 0.0;
    for (row, &y) in logits.chunks(c).zip(&b.labels) {
        let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        total += lse - row[y as usize] as f64;
    }
    total / b.labels.len() as f64
}

/// The checkpoint's tensors, in memory.
type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

fn read_tensors(dir: &Path) -> Tensors {
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, t)| {
            let v = t
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (n, (t.shape().to_vec(), v))
        })
        .collect()
}

/// A copy of `src` in `dst` with `tensors` as its weights and `config` edited by `edit`.
fn write_copy(src: &Path, dst: &Path, tensors: &Tensors, edit: impl Fn(&mut serde_json::Value)) {
    std::fs::create_dir_all(dst).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("config.json")).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(dst.join("config.json"), config.to_string()).unwrap();
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, (s, v))| {
            (
                n.clone(),
                s.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dst.join("model.safetensors")).unwrap();
}

/// Multiplies columns `cols` of the HF `[rows, cols]` tensor `name` by `f`.
fn scale_cols(t: &mut Tensors, name: &str, cols: std::ops::Range<usize>, f: f32) {
    let (shape, v) = t.get_mut(name).unwrap();
    let n = shape[1];
    for row in v.chunks_mut(n) {
        for x in &mut row[cols.clone()] {
            *x *= f;
        }
    }
}

fn options(structure: Structure, fraction: f64, criterion: Criterion) -> StructuredOptions {
    StructuredOptions {
        structure,
        fraction: Sparsity::new(fraction).unwrap(),
        step: 0.1,
        criterion,
    }
}

fn prune(out: &Path, o: &StructuredOptions) -> Result<StructuredReport, String> {
    prune_structured(&fixture(), out, o, &Device::flex(), &mut |_, _, _| {})
        .map_err(|e| e.to_string())
}

fn prune_from(model: &Path, out: &Path, o: &StructuredOptions) -> Result<StructuredReport, String> {
    prune_structured(model, out, o, &Device::flex(), &mut |_, _, _| {}).map_err(|e| e.to_string())
}

fn config(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap()
}

const WO: &str = "bert.encoder.layer.{l}.attention.output.dense.weight";
const W2: &str = "bert.encoder.layer.{l}.output.dense.weight";

fn key(pattern: &str, l: usize) -> String {
    pattern.replace("{l}", &l.to_string())
}

#[test]
fn removing_heads_equals_zeroing_their_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("h");
    let heads = BTreeMap::from([(0, vec![1, 3]), (1, vec![2])]);
    let report = prune(
        &out,
        &options(Structure::Heads, 0.0, Criterion::Explicit(heads.clone())),
    )
    .unwrap();
    assert_eq!((report.units_before, report.units_after), (8, 5));
    let cfg = config(&out);
    assert_eq!(
        cfg["pruned_heads"],
        serde_json::json!({"0": [1, 3], "1": [2]})
    );
    assert_eq!(cfg["refinery_pruning"]["method"], "heads");
    let t = read_tensors(&out);
    assert_eq!(
        t["bert.encoder.layer.0.attention.self.query.weight"].0,
        vec![16, 32]
    );
    assert_eq!(
        t["bert.encoder.layer.0.attention.self.value.bias"].0,
        vec![16]
    );
    assert_eq!(
        t["bert.encoder.layer.1.attention.output.dense.weight"].0,
        vec![32, 24]
    );
    assert!(out.join("pruning.json").is_file());

    // The full model with those heads' output columns zeroed.
    let mut full = read_tensors(&fixture());
    for (l, hs) in &heads {
        for &h in hs {
            scale_cols(&mut full, &key(WO, *l), h * 8..(h + 1) * 8, 0.0);
        }
    }
    let zeroed = tmp.path().join("zeroed");
    write_copy(&fixture(), &zeroed, &full, |_| {});
    let b = batch();
    let d = max_diff(&logits(&out, &b), &logits(&zeroed, &b));
    assert!(d <= 1e-5, "pruned vs zeroed heads: max |Δ| {d}");
    // ... and it differs from the unpruned model (the test can fail).
    assert!(max_diff(&logits(&fixture(), &b), &logits(&out, &b)) > 1e-3);

    // Pruning again: original indices accumulate; the report names original indices.
    let again = tmp.path().join("h2");
    let r = prune_from(
        &out,
        &again,
        &options(
            Structure::Heads,
            0.0,
            Criterion::Explicit(BTreeMap::from([(0, vec![2])])),
        ),
    )
    .unwrap();
    assert_eq!(r.rounds[0].removed[0].index, 2);
    assert_eq!(
        config(&again)["pruned_heads"]["0"],
        serde_json::json!([1, 2, 3])
    );
    assert_eq!(
        config(&again)["refinery_pruning"]["previous"]["method"],
        "heads"
    );
    let mut full2 = full.clone();
    scale_cols(&mut full2, &key(WO, 0), 16..24, 0.0);
    let zeroed2 = tmp.path().join("zeroed2");
    write_copy(&fixture(), &zeroed2, &full2, |_| {});
    let d = max_diff(&logits(&again, &b), &logits(&zeroed2, &b));
    assert!(d <= 1e-5, "pruned twice: max |Δ| {d}");
}

#[test]
fn removing_ffn_neurons_equals_zeroing_their_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("f");
    let report = prune(&out, &options(Structure::Ffn, 0.25, Criterion::Magnitude)).unwrap();
    assert_eq!((report.units_before, report.units_after), (128, 96));
    assert_eq!(config(&out)["intermediate_size"], 48);
    let mut full = read_tensors(&fixture());
    for r in &report.rounds[0].removed {
        scale_cols(&mut full, &key(W2, r.layer), r.index..r.index + 1, 0.0);
    }
    // The removed neurons have the smallest ‖w_in‖·‖w_out‖ of their layer.
    let t = read_tensors(&fixture());
    for l in 0..2 {
        let (_, win) = &t[&format!("bert.encoder.layer.{l}.intermediate.dense.weight")];
        let (_, wout) = &t[&key(W2, l)];
        let norm = |j: usize| {
            let a: f32 = win[j * 32..(j + 1) * 32].iter().map(|x| x * x).sum();
            let b: f32 = (0..32).map(|r| wout[r * 64 + j].powi(2)).sum();
            (a * b).sqrt()
        };
        let removed: Vec<usize> = report.rounds[0]
            .removed
            .iter()
            .filter(|r| r.layer == l)
            .map(|r| r.index)
            .collect();
        assert_eq!(removed.len(), 16);
        let worst_kept = (0..64)
            .filter(|j| !removed.contains(j))
            .map(norm)
            .fold(f32::INFINITY, f32::min);
        assert!(removed.iter().all(|&j| norm(j) <= worst_kept));
    }
    let zeroed = tmp.path().join("zeroed");
    write_copy(&fixture(), &zeroed, &full, |_| {});
    let b = batch();
    let d = max_diff(&logits(&out, &b), &logits(&zeroed, &b));
    assert!(d <= 1e-5, "pruned vs zeroed neurons: max |Δ| {d}");
}

#[test]
fn gate_gradients_match_finite_differences() {
    let tmp = tempfile::tempdir().unwrap();
    let b = batch();
    let dev = Device::flex().autodiff();
    let (_, model) = load_classifier(&fixture(), &dev).unwrap();
    let g = gate_gradients(&model, &b, None, &dev).unwrap();
    assert_eq!(g.heads.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4]);
    assert_eq!(g.ffn.iter().map(Vec::len).collect::<Vec<_>>(), vec![64, 64]);
    let base = read_tensors(&fixture());
    let l0 = loss(&logits(&fixture(), &b), &b);
    assert!((g.loss - l0).abs() < 1e-5, "{} vs {l0}", g.loss);
    let eps = 1e-2f32;
    let fd = |name: &str, cols: std::ops::Range<usize>, tag: &str| {
        let at = |f: f32| {
            let mut t = base.clone();
            scale_cols(&mut t, name, cols.clone(), f);
            let dir = tmp.path().join(format!("{tag}-{f}"));
            write_copy(&fixture(), &dir, &t, |_| {});
            loss(&logits(&dir, &b), &b)
        };
        (at(1.0 + eps) - at(1.0 - eps)) / (2.0 * eps as f64)
    };
    let mut checked = 0;
    for l in 0..2 {
        for h in 0..4 {
            let want = fd(&key(WO, l), h * 8..(h + 1) * 8, &format!("h{l}{h}"));
            let got = g.heads[l][h];
            assert!(
                (want - got).abs() <= 2e-4 + 1e-2 * want.abs(),
                "layer {l} head {h}: gradient {got}, finite difference {want}"
            );
            checked += usize::from(want.abs() > 1e-3);
        }
        for j in [0, 17, 63] {
            let want = fd(&key(W2, l), j..j + 1, &format!("n{l}{j}"));
            let got = g.ffn[l][j];
            assert!(
                (want - got).abs() <= 2e-4 + 1e-2 * want.abs(),
                "layer {l} neuron {j}: gradient {got}, finite difference {want}"
            );
        }
    }
    assert!(checked >= 4, "too few heads with a measurable gradient");
}

#[test]
fn magnitude_heads_keep_one_per_layer_and_write_a_loadable_model() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");
    let r = prune(&out, &options(Structure::Heads, 0.75, Criterion::Magnitude)).unwrap();
    assert_eq!((r.units_before, r.units_after), (8, 2));
    assert!(r.layers.iter().all(|l| l.after == 1), "{:?}", r.layers);
    assert!(r.params_after < r.params_before);
    let b = batch();
    assert_eq!(logits(&out, &b).len(), 15);
}

#[test]
fn bad_requests_have_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let explicit = |spec: Vec<(usize, Vec<usize>)>| {
        options(
            Structure::Heads,
            0.0,
            Criterion::Explicit(spec.into_iter().collect()),
        )
    };
    let mut n = 0;
    let mut err = |o: &StructuredOptions| {
        n += 1;
        prune(&tmp.path().join(format!("out{n}")), o).unwrap_err()
    };
    let e = err(&explicit(vec![(0, vec![0, 1, 2, 3])]));
    assert!(
        e.contains("layer 0, which has 4") && e.contains("one must stay"),
        "{e}"
    );
    let e = err(&explicit(vec![(5, vec![0])]));
    assert!(e.contains("layer 5 does not exist"), "{e}");
    let e = err(&explicit(vec![(1, vec![4])]));
    assert!(e.contains("layer 1 has no head 4"), "{e}");
    let e = err(&options(Structure::Heads, 0.9, Criterion::Magnitude));
    assert!(e.contains("every layer keeps one"), "{e}");
    let e = err(&options(Structure::Ffn, 0.001, Criterion::Magnitude));
    assert!(e.contains("removes none"), "{e}");
    let e = err(&options(
        Structure::Ffn,
        0.5,
        Criterion::Explicit(BTreeMap::from([(0, vec![0])])),
    ));
    assert!(e.contains("--method heads"), "{e}");
    let mut o = options(Structure::Heads, 0.5, Criterion::Magnitude);
    o.step = 0.0;
    assert!(err(&o).contains("step"));

    // A GPT-2 classifier, a quantized model, a mis-shaped tensor, a config that names a
    // head that is not there.
    let gpt = fixture().join("../gpt_cls_tiny");
    let e = prune_from(
        &gpt,
        &tmp.path().join("g"),
        &options(Structure::Heads, 0.5, Criterion::Magnitude),
    )
    .unwrap_err();
    assert!(e.contains("BERT"), "{e}");
    let t = read_tensors(&fixture());
    let q = tmp.path().join("q");
    write_copy(&fixture(), &q, &t, |c| {
        c["refinery_quantization"] = serde_json::json!({"format_version": 1});
    });
    let e = prune_from(
        &q,
        &tmp.path().join("q2"),
        &options(Structure::Ffn, 0.5, Criterion::Magnitude),
    )
    .unwrap_err();
    assert!(
        e.contains("int8") && e.contains("prune the f32 model"),
        "{e}"
    );
    let mut bad = t.clone();
    let (shape, v) = bad
        .get_mut("bert.encoder.layer.1.intermediate.dense.weight")
        .unwrap();
    *shape = vec![32, 64];
    v.truncate(32 * 64);
    let m = tmp.path().join("mis");
    write_copy(&fixture(), &m, &bad, |_| {});
    let e = prune_from(
        &m,
        &tmp.path().join("m2"),
        &options(Structure::Ffn, 0.5, Criterion::Magnitude),
    )
    .unwrap_err();
    assert!(
        e.contains("bert.encoder.layer.1.intermediate.dense.weight") && e.contains("[32, 64]"),
        "{e}"
    );
    let p = tmp.path().join("ph");
    write_copy(&fixture(), &p, &t, |c| {
        c["pruned_heads"] = serde_json::json!({"0": [7]});
    });
    let e = prune_from(
        &p,
        &tmp.path().join("p2"),
        &options(Structure::Ffn, 0.5, Criterion::Magnitude),
    )
    .unwrap_err();
    assert!(e.contains("pruned_heads") && e.contains("no head 7"), "{e}");
}

/// Writes pruned checkpoints and refinery's logits on a fixed batch for
/// crates/compress/tests/fixtures/check_hf_load_pruned.py (scripts/hf-interop.sh): heads,
/// FFN neurons, and both. Does nothing unless `REFINERY_HF_EXPORT_PRUNED_DIR` is set.
#[test]
fn export_pruned_for_hf() {
    let Ok(root) = std::env::var("REFINERY_HF_EXPORT_PRUNED_DIR") else {
        eprintln!("skipped: set REFINERY_HF_EXPORT_PRUNED_DIR (scripts/hf-interop.sh does)");
        return;
    };
    let root = PathBuf::from(root);
    std::fs::create_dir_all(&root).unwrap();
    let heads = root.join("heads");
    prune(
        &heads,
        &options(
            Structure::Heads,
            0.0,
            Criterion::Explicit(BTreeMap::from([(0, vec![0, 2]), (1, vec![3])])),
        ),
    )
    .unwrap();
    let ffn = root.join("ffn");
    prune(&ffn, &options(Structure::Ffn, 0.5, Criterion::Magnitude)).unwrap();
    let both = root.join("heads_ffn");
    prune_from(
        &heads,
        &both,
        &options(Structure::Ffn, 0.25, Criterion::Magnitude),
    )
    .unwrap();
    // int8 of the unpruned and of the head-pruned model: scripts/dequantize.py must turn both
    // into checkpoints transformers loads with the int8 weights.
    let opts = refinery_compress::quant::QuantOptions::default();
    refinery_compress::quant::quantize_dir(&fixture(), &root.join("int8"), &opts, None).unwrap();
    let heads_int8 = root.join("heads_int8");
    refinery_compress::quant::quantize_dir(&heads, &heads_int8, &opts, None).unwrap();
    // reference.json: the batch and refinery's f32 logits (of the f32 model an int8 one was
    // made from: the int8 check is the weights, the logits only within the int8 error).
    let b = batch();
    let int8 = root.join("int8");
    for (dir, f32_dir) in [
        (&heads, &heads),
        (&ffn, &ffn),
        (&both, &both),
        (&int8, &fixture()),
        (&heads_int8, &heads),
    ] {
        let reference = serde_json::json!({
            "input_ids": b.input_ids,
            "token_type_ids": b.token_type_ids,
            "attention_mask": b.attention_mask,
            "shape": [b.batch_size, b.seq_len],
            "logits": logits(f32_dir, &b),
        });
        std::fs::write(dir.join("reference.json"), reference.to_string()).unwrap();
    }
    println!("exported to {}", root.display());
}
