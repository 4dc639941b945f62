//! Sparse vs dense attention: forward and forward + backward time at T = 512, 1024, 2048 with
//! sliding windows of 64 and 128 (and a strided pattern with stride = local = sqrt-ish 64).
//!
//! `B = 1, H = 4, Dh = 64`, bidirectional and causal. Dense is [`scaled_dot_product`] with the
//! equivalent `[B, 1, T, T]` mask (built once, outside the timed region); sparse is
//! [`sparse_attention`]. Each case is run once to warm up, then `RUNS` times; the median is
//! reported with the dense/sparse ratio.
//!
//! One thread: `RAYON_NUM_THREADS=1 cargo bench -p refinery-model --bench attention`
//! (arguments: optional list of T values, e.g. `-- 512 1024`).

use std::time::Instant;

use burn::tensor::{Bool, Device, Distribution, Tensor};
use refinery_model::attention::{
    causal_mask, scaled_dot_product, sparse_attention, sparse_mask, SparseAttention, SparseOptions,
};

const RUNS: usize = 5;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// Median seconds of `f` over `RUNS` runs after one warm-up.
fn time(mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn main() {
    let ts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let ts = if ts.is_empty() {
        vec![512, 1024, 2048]
    } else {
        ts
    };
    let (b, h, dh) = (1, 4, 64);
    let patterns = [
        (
            "window 64",
            SparseAttention::SlidingWindow {
                window: 64,
                global_tokens: vec![0],
            },
        ),
        (
            "window 128",
            SparseAttention::SlidingWindow {
                window: 128,
                global_tokens: vec![0],
            },
        ),
        (
            "strided 64/64",
            SparseAttention::Strided {
                stride: 64,
                local: 64,
            },
        ),
    ];
    println!(
        "B={b} H={h} Dh={dh}, median of {RUNS} runs, threads: RAYON_NUM_THREADS={}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    );
    println!("| T | causal | pattern | pass | dense ms | sparse ms | dense/sparse |");
    println!("|---|---|---|---|---|---|---|");
    for &t in &ts {
        for causal in [false, true] {
            for (name, pattern) in &patterns {
                for backward in [false, true] {
                    let device = if backward {
                        Device::flex().autodiff()
                    } else {
                        Device::flex()
                    };
                    device.seed(1);
                    let rand = || {
                        Tensor::<4>::random([b, h, t, dh], Distribution::Normal(0.0, 1.0), &device)
                    };
                    let (q, k, v) = (rand(), rand(), rand());
                    let mut m = sparse_mask(pattern, t, causal, &device);
                    if causal {
                        m = m.bool_or(causal_mask(t, &device));
                    }
                    let mask: Tensor<4, Bool> = m.reshape([1, 1, t, t]);
                    let run = |sparse: bool| {
                        let (q, k, v) = if backward {
                            (
                                q.clone().require_grad(),
                                k.clone().require_grad(),
                                v.clone().require_grad(),
                            )
                        } else {
                            (q.clone(), k.clone(), v.clone())
                        };
                        let out = if sparse {
                            let opts = SparseOptions {
                                causal,
                                ..SparseOptions::default()
                            };
                            sparse_attention(q, k, v, pattern, opts).0
                        } else {
                            scaled_dot_product(q, k, v, Some(mask.clone())).0
                        };
                        let loss = out.sum();
                        if backward {
                            let grads = loss.backward();
                            std::hint::black_box(grads);
                        } else {
                            std::hint::black_box(loss.into_scalar::<f32>());
                        }
                    };
                    let dense = time(|| run(false));
                    let sparse = time(|| run(true));
                    println!(
                        "| {t} | {causal} | {name} | {} | {:.1} | {:.1} | {:.2} |",
                        if backward { "fwd+bwd" } else { "fwd" },
                        dense * 1e3,
                        sparse * 1e3,
                        dense / sparse
                    );
                }
            }
        }
    }
}
