//! Magnitude pruning and the sparse storage format: exact counts per scope, ties, which
//! tensors are selected, the dense output (bit-identical where not pruned, loadable by
//! refinery), `config.json`/`pruning.json`, the sparse round trip, and errors (never panics)
//! on malformed sparse files and bad requests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use refinery_compress::prune::{
    magnitude_prune, prune_checkpoint, tensor_role, PruneOptions, Scope, Sparsity, TensorRole,
};
use refinery_compress::sparse::{self, DenseTensor, SPARSE_FILE};
use refinery_model::hf_classify::load_classifier;
use refinery_model::OutputOptions;
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde_json::Value;

/// Deterministic pseudo-random weights in (-1, 1) (a 64-bit LCG), distinct magnitudes.
fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A tiny BERT-shaped checkpoint: `(name, shape)` → values.
fn tiny_tensors() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let spec: &[(&str, &[usize])] = &[
        ("bert.embeddings.word_embeddings.weight", &[10, 4]),
        ("bert.embeddings.LayerNorm.weight", &[4]),
        ("bert.embeddings.LayerNorm.bias", &[4]),
        ("bert.encoder.layer.0.attention.self.query.weight", &[4, 4]),
        ("bert.encoder.layer.0.attention.self.query.bias", &[4]),
        ("bert.encoder.layer.0.intermediate.dense.weight", &[8, 4]),
        ("bert.encoder.layer.0.output.dense.weight", &[4, 8]),
        ("bert.pooler.dense.weight", &[4, 4]),
        ("classifier.weight", &[2, 4]),
        ("classifier.bias", &[2]),
    ];
    spec.iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let n = shape.iter().product();
            (name.to_string(), shape.to_vec(), weights(n, i as u64 + 1))
        })
        .collect()
}

fn write_checkpoint(dir: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    std::fs::create_dir_all(dir).unwrap();
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| {
            (
                n.clone(),
                s.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(meta), &dir.join("model.safetensors")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"model_type": "bert", "hidden_size": 4}"#,
    )
    .unwrap();
    std::fs::write(dir.join("tokenizer.json"), "{\"tok\": 1}\n").unwrap();
}

/// Tensor name → (shape, values).
type Weights = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// The tensors of a safetensors file, and its `format` metadata.
fn read_weights(path: &Path) -> (Weights, Option<String>) {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let map = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            assert_eq!(v.dtype(), Dtype::F32, "{n}");
            let vals = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (n, (v.shape().to_vec(), vals))
        })
        .collect();
    let format = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("format").cloned());
    (map, format)
}

fn options(s: f64, scope: Scope, include_head: bool, write_sparse: bool) -> PruneOptions {
    PruneOptions {
        sparsity: Sparsity::new(s).unwrap(),
        scope,
        include_head,
        write_sparse,
    }
}

const LINEAR: &[&str] = &[
    "bert.encoder.layer.0.attention.self.query.weight",
    "bert.encoder.layer.0.intermediate.dense.weight",
    "bert.encoder.layer.0.output.dense.weight",
    "bert.pooler.dense.weight",
];

fn zeros(v: &[f32]) -> usize {
    v.iter().filter(|&&x| x == 0.0).count()
}

#[test]
fn sparsity_must_be_in_zero_one() {
    for bad in [-0.1, 1.0, 1.5, f64::NAN, f64::INFINITY] {
        assert!(Sparsity::new(bad).is_err(), "{bad}");
    }
    assert_eq!(Sparsity::new(0.5).unwrap().count(7), 4); // round(3.5) = 4
    assert_eq!(Sparsity::new(0.0).unwrap().count(7), 0);
    assert_eq!(Sparsity::new(0.3).unwrap().count(10), 3);
}

#[test]
fn roles_select_linear_weights_only() {
    let cases: &[(&str, &[usize], TensorRole)] = &[
        (
            "bert.encoder.layer.0.attention.self.query.weight",
            &[4, 4],
            TensorRole::Linear,
        ),
        ("bert.pooler.dense.weight", &[4, 4], TensorRole::Linear),
        (
            "transformer.h.0.attn.c_attn.weight",
            &[4, 12],
            TensorRole::Linear,
        ),
        (
            "transformer.h.0.mlp.c_fc.weight",
            &[4, 16],
            TensorRole::Linear,
        ),
        (
            "bert.embeddings.word_embeddings.weight",
            &[10, 4],
            TensorRole::Embedding,
        ),
        (
            "embeddings.position_embeddings.weight",
            &[10, 4],
            TensorRole::Embedding,
        ),
        ("transformer.wte.weight", &[10, 4], TensorRole::Embedding),
        ("transformer.wpe.weight", &[10, 4], TensorRole::Embedding),
        ("model.shared.weight", &[10, 4], TensorRole::Embedding),
        (
            "model.encoder.embed_positions.weight",
            &[10, 4],
            TensorRole::Embedding,
        ),
        ("lm_head.weight", &[10, 4], TensorRole::Tied),
        ("cls.predictions.decoder.weight", &[10, 4], TensorRole::Tied),
        ("bert.embeddings.LayerNorm.weight", &[4], TensorRole::Other),
        ("transformer.h.0.ln_1.weight", &[4], TensorRole::Other),
        (
            "bert.encoder.layer.0.attention.self.query.bias",
            &[4],
            TensorRole::Other,
        ),
        ("classifier.weight", &[2, 4], TensorRole::Head),
        ("classifier.dense.weight", &[4, 4], TensorRole::Head),
        ("score.weight", &[2, 4], TensorRole::Head),
        ("heads.1.weight", &[3, 4], TensorRole::Head),
        (
            "cls.predictions.transform.dense.weight",
            &[4, 4],
            TensorRole::Head,
        ),
    ];
    for (name, shape, role) in cases {
        assert_eq!(tensor_role(name, shape), *role, "{name}");
    }
}

#[test]
fn global_scope_prunes_exactly_the_smallest_round_s_n() {
    let mut a = weights(37, 1);
    let mut b = weights(50, 2);
    let all: Vec<f32> = a.iter().chain(&b).copied().collect();
    for s in [0.0, 0.1, 0.33, 0.5, 0.9, 0.99] {
        let (mut x, mut y) = (a.clone(), b.clone());
        magnitude_prune(
            &mut [&mut x, &mut y],
            Sparsity::new(s).unwrap(),
            Scope::Global,
        );
        let k = (s * 87.0_f64).round() as usize;
        assert_eq!(zeros(&x) + zeros(&y), k, "s = {s}");
        // Every pruned magnitude ≤ every kept one; kept values unchanged.
        let got: Vec<f32> = x.iter().chain(&y).copied().collect();
        let max_pruned = all
            .iter()
            .zip(&got)
            .filter(|(_, g)| **g == 0.0)
            .map(|(w, _)| w.abs())
            .fold(0.0, f32::max);
        for (w, g) in all.iter().zip(&got) {
            if *g != 0.0 {
                assert_eq!(g.to_bits(), w.to_bits());
                assert!(w.abs() >= max_pruned);
            }
        }
    }
    // The input was not touched by the loop (clones); layer sparsities differ under global.
    magnitude_prune(
        &mut [&mut a, &mut b],
        Sparsity::new(0.5).unwrap(),
        Scope::Global,
    );
    assert_eq!(zeros(&a) + zeros(&b), 44);
}

#[test]
fn layer_scope_prunes_round_s_n_in_each_tensor() {
    let mut a = weights(37, 1);
    let mut b = weights(50, 2);
    // Make `a` all larger than `b`: global would take everything from `b`, layer may not.
    for w in a.iter_mut() {
        *w += w.signum() * 2.0;
    }
    let (mut ga, mut gb) = (a.clone(), b.clone());
    magnitude_prune(
        &mut [&mut ga, &mut gb],
        Sparsity::new(0.4).unwrap(),
        Scope::Global,
    );
    assert_eq!((zeros(&ga), zeros(&gb)), (0, 35));
    magnitude_prune(
        &mut [&mut a, &mut b],
        Sparsity::new(0.4).unwrap(),
        Scope::Layer,
    );
    assert_eq!((zeros(&a), zeros(&b)), (15, 20)); // round(14.8), round(20)
}

#[test]
fn ties_at_the_threshold_go_to_the_lowest_index() {
    // Every magnitude equal: exactly round(S·n) zeros, the first ones.
    let mut t: Vec<f32> = (0..10)
        .map(|i| if i % 2 == 0 { 0.5 } else { -0.5 })
        .collect();
    magnitude_prune(&mut [&mut t], Sparsity::new(0.4).unwrap(), Scope::Layer);
    assert_eq!(&t[..4], &[0.0; 4][..]);
    assert_eq!(&t[4..], &[0.5, -0.5, 0.5, -0.5, 0.5, -0.5][..]);
    // Below-threshold values all go, then ties by position: |-0.1| and |0.1| tie.
    let mut a = vec![1.0f32, 0.1, -1.0, 0.05];
    let mut b = vec![-0.1f32, 1.0, 0.1];
    magnitude_prune(
        &mut [&mut a, &mut b],
        Sparsity::new(0.4).unwrap(),
        Scope::Global,
    );
    assert_eq!(a, vec![1.0, 0.0, -1.0, 0.0]); // round(2.8) = 3: 0.05, then a's 0.1, b's -0.1
    assert_eq!(b, vec![0.0, 1.0, 0.1]);
    // Across tensors under global: the first tensor's ties go first.
    let mut a = vec![0.1f32, 0.1];
    let mut b = vec![0.1f32, 0.1];
    magnitude_prune(
        &mut [&mut a, &mut b],
        Sparsity::new(0.7).unwrap(),
        Scope::Global,
    );
    assert_eq!((a, b), (vec![0.0, 0.0], vec![0.0, 0.1])); // round(2.8) = 3
}

fn run(
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    opts: PruneOptions,
) -> (
    tempfile::TempDir,
    PathBuf,
    refinery_compress::prune::PruneReport,
) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_checkpoint(&model, tensors);
    let out = dir.path().join("out");
    let report = prune_checkpoint(&model, &out, &opts).unwrap();
    (dir, out, report)
}

#[test]
fn checkpoint_is_pruned_dense_and_the_rest_is_bit_identical() {
    let input = tiny_tensors();
    let (_dir, out, report) = run(&input, options(0.5, Scope::Layer, false, false));
    let (got, format) = read_weights(&out.join("model.safetensors"));
    assert_eq!(format.as_deref(), Some("pt"), "metadata kept");
    assert_eq!(got.len(), input.len());
    for (name, shape, values) in &input {
        let (s, v) = &got[name];
        assert_eq!(s, shape);
        if LINEAR.contains(&name.as_str()) {
            assert_eq!(
                zeros(v),
                (values.len() as f64 * 0.5).round() as usize,
                "{name}"
            );
            for (a, b) in values.iter().zip(v) {
                assert!(*b == 0.0 || a.to_bits() == b.to_bits());
            }
        } else {
            let same = values
                .iter()
                .zip(v)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{name} must be unchanged");
        }
    }
    // Report: the four Linear weights, the rest skipped with their role.
    let names: Vec<&str> = report.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, LINEAR);
    assert_eq!(report.totals.params, 16 + 32 + 32 + 16);
    assert_eq!(report.totals.zeros, 8 + 16 + 16 + 8);
    assert_eq!(report.storage.dense_bytes, 4 * 96);
    assert!(!report.storage.sparse_written);
    let skipped: HashMap<&str, TensorRole> = report
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.role))
        .collect();
    assert_eq!(skipped["classifier.weight"], TensorRole::Head);
    assert_eq!(
        skipped["bert.embeddings.word_embeddings.weight"],
        TensorRole::Embedding
    );
    assert_eq!(
        report.totals.model_params,
        report.totals.params + report.skipped.iter().map(|s| s.params).sum::<usize>()
    );

    // config.json keeps its keys and gains refinery_pruning; the rest is copied.
    let config: Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model_type"], "bert");
    assert_eq!(
        config["refinery_pruning"],
        serde_json::json!({"method": "magnitude", "scope": "layer", "sparsity": 0.5, "tensors": 4})
    );
    assert_eq!(
        std::fs::read(out.join("tokenizer.json")).unwrap(),
        b"{\"tok\": 1}\n"
    );
    let json: Value =
        serde_json::from_slice(&std::fs::read(out.join("pruning.json")).unwrap()).unwrap();
    assert_eq!(json["totals"]["zeros"], 48);
    assert_eq!(json["tensors"][0]["shape"], serde_json::json!([4, 4]));
    assert_eq!(json["tensors"][0]["sparsity"], 0.5);
    assert!(!out.join(SPARSE_FILE).exists());
}

#[test]
fn global_checkpoint_count_and_head_option() {
    let input = tiny_tensors();
    let n_linear = 96usize;
    let (_d, out, report) = run(&input, options(0.3, Scope::Global, false, false));
    assert_eq!(
        report.totals.zeros,
        (0.3 * n_linear as f64).round() as usize
    );
    let (got, _) = read_weights(&out.join("model.safetensors"));
    assert_eq!(zeros(&got["classifier.weight"].1), 0);

    let (_d, out, report) = run(&input, options(0.3, Scope::Global, true, false));
    assert_eq!(report.totals.tensors, 5);
    assert_eq!(
        report.totals.zeros,
        (0.3 * (n_linear + 8) as f64).round() as usize
    );
    let (got, _) = read_weights(&out.join("model.safetensors"));
    let z: usize = LINEAR
        .iter()
        .chain(&["classifier.weight"])
        .map(|n| zeros(&got[*n].1))
        .sum();
    assert_eq!(z, report.totals.zeros);
}

#[test]
fn sparse_file_round_trips_bit_for_bit() {
    let input = tiny_tensors();
    let (_d, out, report) = run(&input, options(0.6, Scope::Global, false, true));
    let sparse_path = out.join(SPARSE_FILE);
    let size = std::fs::metadata(&sparse_path).unwrap().len();
    assert_eq!(report.storage.sparse_bytes, size);
    assert!(report.storage.sparse_written);
    let back = sparse::read_sparse(&sparse_path).unwrap();
    let (dense, _) = read_weights(&out.join("model.safetensors"));
    assert_eq!(back.len(), LINEAR.len());
    for t in &back {
        let (shape, values) = &dense[&t.name];
        assert_eq!(&t.shape, shape);
        let bits: Vec<u32> = t.values.iter().map(|v| v.to_bits()).collect();
        let want: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, want, "{}", t.name);
    }
    // Odd lengths, -0.0, NaN payloads, infinities and an empty tensor survive too.
    let odd = vec![
        DenseTensor {
            name: "a".into(),
            shape: vec![3, 3],
            values: vec![
                0.0,
                -0.0,
                1.5,
                f32::from_bits(0x7fc0_1234),
                0.0,
                f32::INFINITY,
                0.0,
                0.0,
                -2.0,
            ],
        },
        DenseTensor {
            name: "empty".into(),
            shape: vec![0, 5],
            values: vec![],
        },
    ];
    let bytes = sparse::encode(&odd).unwrap();
    assert_eq!(bytes.len() as u64, sparse::encoded_len(&odd));
    let back = sparse::decode(&bytes).unwrap();
    assert_eq!(back.len(), 2);
    let bits = |t: &DenseTensor| t.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back[0]), bits(&odd[0]));
    assert_eq!(back[1].shape, vec![0, 5]);
    // Size: bitmask (n/8 bytes) + 4 bytes per non-zero + the header entry.
    let mut big = weights(1000, 3);
    magnitude_prune(&mut [&mut big], Sparsity::new(0.6).unwrap(), Scope::Layer);
    let t = [DenseTensor {
        name: "w".into(),
        shape: vec![1000],
        values: big,
    }];
    assert_eq!(
        sparse::encoded_len(&t),
        28 + (4 + 1 + 4 + 8 + 8) + 125 + 4 * 400
    );
}

/// A small valid image: one 3×3 tensor named "w" with 5 stored values.
fn sample() -> Vec<u8> {
    sparse::encode(&[DenseTensor {
        name: "w".into(),
        shape: vec![3, 3],
        values: vec![1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0, 0.0, 5.0],
    }])
    .unwrap()
}

/// Offsets in [`sample`]: fixed header 28; name len 28..32, name 32..33, rank 33..37, dims
/// 37..53, nnz 53..61; mask 61..63, values 63..83.
fn set_total(b: &mut [u8]) {
    let n = b.len() as u64;
    b[16..24].copy_from_slice(&n.to_le_bytes());
}

#[test]
fn malformed_sparse_files_are_errors_not_panics() {
    let good = sample();
    assert_eq!(good.len(), 83);
    assert!(sparse::decode(&good).is_ok());
    // Truncated at every length.
    for n in 0..good.len() {
        assert!(sparse::decode(&good[..n]).is_err(), "prefix {n}");
    }
    let expect = |b: &[u8], needle: &str| {
        let e = sparse::decode(b).unwrap_err();
        assert!(e.contains(needle), "`{e}` lacks `{needle}`");
    };
    let mut b = good.clone();
    b[0] = b'X';
    expect(&b, "magic");
    let mut b = good.clone();
    b[8] = 2;
    expect(&b, "version 2");
    let mut b = good.clone();
    b.push(0);
    expect(&b, "header records 83 bytes");
    set_total(&mut b);
    expect(&b, "trailing");
    // nnz disagreeing with the bitmask.
    let mut b = good.clone();
    b[53] = 4;
    expect(&b, "tensor `w`");
    let mut b = good.clone();
    b[61] ^= 0b10; // one more bit set
    expect(&b, "bits set but the header says nnz = 5");
    // A bit past element 9.
    let mut b = good.clone();
    b[62] |= 0b10;
    b[61] &= !1;
    expect(&b, "past the last element");
    // nnz above the element count.
    let mut b = good.clone();
    b[53] = 10;
    expect(&b, "10 non-zeros in 9 elements");
    // Shape overflow.
    let mut b = good.clone();
    b[37..45].copy_from_slice(&u64::MAX.to_le_bytes());
    b[45..53].copy_from_slice(&u64::MAX.to_le_bytes());
    expect(&b, "overflows");
    // Huge shape that does not overflow: the data cannot be in the file.
    let mut b = good.clone();
    b[37..45].copy_from_slice(&(1u64 << 30).to_le_bytes());
    expect(&b, "truncated");
    // Absurd counts.
    let mut b = good.clone();
    b[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
    expect(&b, "cannot fit");
    let mut b = good.clone();
    b[33..37].copy_from_slice(&100u32.to_le_bytes());
    expect(&b, "rank 100");
    let mut b = good.clone();
    b[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
    expect(&b, "truncated");
    // The file-level error names the file.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(SPARSE_FILE);
    std::fs::write(&p, &good[..40]).unwrap();
    let e = sparse::read_sparse(&p).unwrap_err().to_string();
    assert!(e.contains("model.sparse") && e.contains("truncated"), "{e}");
}

#[test]
fn bad_requests_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_checkpoint(&model, &tiny_tensors());
    let opts = options(0.5, Scope::Global, false, false);
    let err = |m: &Path, o: &Path| prune_checkpoint(m, o, &opts).unwrap_err().to_string();

    // Output exists and is not empty (and nothing was written to it).
    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("x"), "x").unwrap();
    assert!(err(&model, &busy).contains("not empty"));
    // An empty existing output is fine.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    prune_checkpoint(&model, &empty, &opts).unwrap();
    assert!(empty.join("model.safetensors").is_file());
    // Output inside the model.
    assert!(err(&model, &model.join("sub")).contains("inside the model"));

    // Missing config / weights.
    let no_config = dir.path().join("no_config");
    write_checkpoint(&no_config, &tiny_tensors());
    std::fs::remove_file(no_config.join("config.json")).unwrap();
    let e = err(&no_config, &dir.path().join("o1"));
    assert!(e.contains("config.json") && e.contains("missing"), "{e}");
    let no_weights = dir.path().join("no_weights");
    write_checkpoint(&no_weights, &tiny_tensors());
    std::fs::remove_file(no_weights.join("model.safetensors")).unwrap();
    assert!(err(&no_weights, &dir.path().join("o2")).contains("model.safetensors"));

    // Nothing to prune: embeddings, LayerNorm and a head only.
    let nothing = dir.path().join("nothing");
    let t: Vec<_> = tiny_tensors()
        .into_iter()
        .filter(|(n, _, _)| !LINEAR.contains(&n.as_str()))
        .collect();
    write_checkpoint(&nothing, &t);
    let e = err(&nothing, &dir.path().join("o3"));
    assert!(
        e.contains("no prunable tensors") && e.contains("--include-head"),
        "{e}"
    );
    assert!(!dir.path().join("o3").exists());

    // A corrupt safetensors file.
    let corrupt = dir.path().join("corrupt");
    write_checkpoint(&corrupt, &tiny_tensors());
    std::fs::write(corrupt.join("model.safetensors"), b"\x05\0\0\0").unwrap();
    assert!(err(&corrupt, &dir.path().join("o4")).contains("model.safetensors"));
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../model/tests/fixtures")
        .join(name)
}

/// The pruned HF fixtures (a BERT and a GPT-2 classifier made by transformers) load in
/// refinery's own classifier loader; at sparsity 0 the logits are unchanged bit for bit, at
/// 0.5 they change.
#[test]
fn pruned_fixture_classifiers_load_in_refinery() {
    let dev = Device::flex();
    let ids: Vec<i64> = vec![1, 5, 7, 2, 9, 3, 4, 8];
    let logits = |dir: &Path| -> Vec<f32> {
        let (_, model) = load_classifier(dir, &dev).unwrap();
        let input = Tensor::<2, Int>::from_data(TensorData::new(ids.clone(), [2, 4]), &dev);
        let mask = Tensor::<2, Int>::from_data(TensorData::new(vec![1i64; 8], [2, 4]), &dev);
        model
            .forward(input, None, mask, OutputOptions::default())
            .logits
            .into_data()
            .try_to_vec()
            .unwrap()
    };
    for name in ["bert_cls_tiny", "gpt_cls_tiny"] {
        let src = fixture(name);
        let before = logits(&src);
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("s0");
        let r0 = prune_checkpoint(&src, &zero, &options(0.0, Scope::Global, false, false)).unwrap();
        assert!(r0.totals.tensors > 0, "{name}");
        assert_eq!(logits(&zero), before, "{name}");
        let half = dir.path().join("s5");
        let r = prune_checkpoint(&src, &half, &options(0.5, Scope::Layer, true, true)).unwrap();
        assert!(r.totals.tensors > 0);
        assert_ne!(logits(&half), before, "{name}");
        assert!(sparse::read_sparse(&half.join(SPARSE_FILE)).is_ok());
    }
}

/// Pruning a pruned checkpoint again: the old report and sparse copy are not carried over
/// (they describe other weights), the zeros already there count, `refinery_pruning` is
/// replaced, and the same request twice gives byte-identical files.
#[test]
fn repruning_replaces_the_report_and_is_deterministic() {
    let input = tiny_tensors();
    let (dir, first, _) = run(&input, options(0.3, Scope::Global, false, true));
    let second = dir.path().join("second");
    let r = prune_checkpoint(&first, &second, &options(0.6, Scope::Layer, false, false)).unwrap();
    assert!(!second.join(SPARSE_FILE).exists());
    assert_eq!(r.totals.zeros, 10 + 19 + 19 + 10); // round(0.6·n) per tensor
    let config: Value =
        serde_json::from_slice(&std::fs::read(second.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["refinery_pruning"]["scope"], "layer");
    assert_eq!(config["refinery_pruning"]["sparsity"], 0.6);
    let again = dir.path().join("again");
    prune_checkpoint(&first, &again, &options(0.6, Scope::Layer, false, false)).unwrap();
    for f in [
        "model.safetensors",
        "config.json",
        "pruning.json",
        "tokenizer.json",
    ] {
        assert_eq!(
            std::fs::read(second.join(f)).unwrap(),
            std::fs::read(again.join(f)).unwrap(),
            "{f}"
        );
    }
}
