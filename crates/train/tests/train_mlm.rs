//! MLM + NSP on BERT: the MLM loss falls to near its floor on a tiny synthetic task.
//! (A plain loop here; the `Trainer` is GPT-only so far.)

use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use refinery_model::{BertConfig, OutputOptions};
use refinery_train::data::splitmix64;
use refinery_train::objectives::{mlm_loss, nsp_loss, MlmMasking};

#[test]
fn mlm_and_nsp_losses_fall() {
    // Tokens 0..4 are special ([PAD]=0, [CLS]=1, [SEP]=2, [MASK]=3). Each row is
    // [CLS] a a+1 ... [SEP] b b+1 ... with ids in 4..24 counting upwards (mod 20), where the
    // second segment continues the first (label 0) or starts anywhere (label 1). Masked tokens
    // are determined by their neighbours: MLM floor ~0; NSP is learnable from the boundary.
    let dev = Device::flex().autodiff();
    dev.seed(0);
    let mut config = BertConfig::new(24, 32, 2, 2, 64);
    config.max_position_embeddings = 16;
    config.hidden_dropout_prob = 0.0;
    config.attention_probs_dropout_prob = 0.0;
    let mut model = config.init(&dev).unwrap();
    let mut optim = AdamWConfig::new().with_weight_decay(0.0).init();
    let masking = MlmMasking::bert(3, 24, vec![0, 1, 2, 3]);
    let (b, half) = (32usize, 7usize);
    let t = 2 * half + 2;

    let mut first = (0.0, 0.0);
    let mut last = (0.0, 0.0);
    for step in 0..600u64 {
        let mut tokens = Vec::with_capacity(b * t);
        let mut types = Vec::with_capacity(b * t);
        let mut is_random = Vec::with_capacity(b);
        for row in 0..b as u64 {
            let r = splitmix64(step * 1000 + row);
            let a = r % 20;
            let random = (r >> 20) % 2 == 1;
            let start_b = if random {
                (r >> 30) % 20
            } else {
                (a + half as u64) % 20
            };
            tokens.push(1);
            tokens.extend((0..half as u64).map(|i| 4 + ((a + i) % 20) as i64));
            tokens.push(2);
            tokens.extend((0..half as u64).map(|i| 4 + ((start_b + i) % 20) as i64));
            types.extend((0..t).map(|i| i64::from(i > half + 1)));
            // A random start that happens to continue is a true continuation.
            is_random.push(i64::from(start_b != (a + half as u64) % 20));
        }
        let (inputs, labels) = masking.apply(&tokens, splitmix64(step));
        let ids = Tensor::<2, Int>::from_data(TensorData::new(inputs, [b, t]), &dev);
        let types = Tensor::<2, Int>::from_data(TensorData::new(types, [b, t]), &dev);
        let labels = Tensor::<2, Int>::from_data(TensorData::new(labels, [b, t]), &dev);
        let nsp_y = Tensor::<1, Int>::from_data(TensorData::new(is_random, [b]), &dev);

        let out = model
            .bert
            .forward(ids, Some(types), None, OutputOptions::default());
        let mlm = mlm_loss(model.mlm_logits(out.last_hidden_state), labels);
        let nsp = nsp_loss(model.nsp_logits(out.pooled), nsp_y);
        let loss = mlm.clone() + nsp.clone();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(3e-3, model, grads);

        let now = (
            f64::from(mlm.into_scalar::<f32>()),
            f64::from(nsp.into_scalar::<f32>()),
        );
        if step == 0 {
            first = now;
        }
        // Average the last 10 steps (MLM batches select few tokens: noisy).
        if step >= 590 {
            last = (last.0 + now.0 / 10.0, last.1 + now.1 / 10.0);
        }
    }
    eprintln!(
        "MLM {:.3} -> {:.3}, NSP {:.3} -> {:.3}",
        first.0, last.0, first.1, last.1
    );
    assert!(first.0 > 2.5, "first MLM loss {}", first.0); // ~ln 24 = 3.18
    assert!(
        last.0 < 0.5,
        "MLM loss {} -> {} (floor ~0)",
        first.0,
        last.0
    );
    assert!(
        last.1 < 0.45,
        "NSP loss {} -> {} (ln 2 = 0.69 at chance)",
        first.1,
        last.1
    );
}
