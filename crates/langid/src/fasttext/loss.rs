//! The output layers of supervised fastText models, as used by `predict`:
//! hierarchical softmax (`HierarchicalSoftmaxLoss`), softmax
//! (`SoftmaxLoss`) and one-vs-all / negative sampling
//! (`BinaryLogisticLoss`).

use super::matrix::Matrix;

/// `Loss::std_log`: note the `double` epsilon, so the sum and the log are
/// computed in `f64` and rounded back to `f32`, as in fastText.
pub(crate) fn std_log(x: f32) -> f32 {
    (x as f64 + 1e-5).ln() as f32
}

const SIGMOID_TABLE_SIZE: usize = 512;
const MAX_SIGMOID: f32 = 8.0;

/// A `(log-probability, label index)` pair, as in fastText's `Predictions`.
pub(crate) type Scored = (f32, usize);

#[derive(Clone, Debug)]
pub(crate) enum Loss {
    Hs(Tree),
    Softmax,
    /// One-vs-all (`ova`) and negative sampling (`ns`): independent
    /// sigmoids, through fastText's 512-entry lookup table.
    Binary(Vec<f32>),
}

#[derive(Clone, Copy, Debug)]
struct Node {
    left: i64,
    right: i64,
    count: i64,
}

/// The Huffman tree over the labels: leaves `0..osz`, internal nodes
/// `osz..2*osz-1`, root last. Internal node `n` uses output row `n - osz`.
#[derive(Clone, Debug)]
pub(crate) struct Tree {
    nodes: Vec<Node>,
    osz: usize,
}

impl Tree {
    /// `HierarchicalSoftmaxLoss::buildTree`, from the label counts in
    /// dictionary order (fastText sorts them by decreasing count).
    pub(crate) fn build(counts: &[i64]) -> Tree {
        let osz = counts.len();
        let total = (2 * osz).saturating_sub(1);
        let mut nodes = vec![
            Node {
                left: -1,
                right: -1,
                count: 1_000_000_000_000_000,
            };
            total
        ];
        for (n, &c) in nodes.iter_mut().zip(counts) {
            n.count = c;
        }
        let mut leaf = osz as i64 - 1;
        let mut node = osz;
        for i in osz..total {
            let mut mini = [0usize; 2];
            for m in &mut mini {
                // `node >= i` is not built yet: only possible with label
                // counts >= 1e15, where fastText reads garbage; take a leaf.
                if leaf >= 0 && (node >= i || nodes[leaf as usize].count < nodes[node].count) {
                    *m = leaf as usize;
                    leaf -= 1;
                } else {
                    *m = node;
                    node += 1;
                }
            }
            nodes[i].left = mini[0] as i64;
            nodes[i].right = mini[1] as i64;
            nodes[i].count = nodes[mini[0]].count.saturating_add(nodes[mini[1]].count);
        }
        Tree { nodes, osz }
    }

    /// `HierarchicalSoftmaxLoss::dfs`, with an explicit stack (left child
    /// first, as the recursion) so a degenerate tree cannot overflow the
    /// call stack.
    fn predict(&self, k: usize, threshold: f32, hidden: &[f32], wo: &Matrix) -> Vec<Scored> {
        let mut heap = TopK::new(k);
        let min_score = std_log(threshold);
        let Some(root) = self.nodes.len().checked_sub(1) else {
            return Vec::new();
        };
        let mut stack: Vec<(usize, f32)> = vec![(root, 0.0)];
        while let Some((node, score)) = stack.pop() {
            if score < min_score {
                continue;
            }
            if heap.is_full() && score < heap.min() {
                continue;
            }
            let n = self.nodes[node];
            if n.left == -1 && n.right == -1 {
                heap.push((score, node));
                continue;
            }
            let f = wo.dot_row(hidden, node - self.osz);
            let f = (1.0f64 / (1.0f32 + (-f).exp()) as f64) as f32;
            stack.push((n.right as usize, score + std_log(f)));
            stack.push((n.left as usize, score + std_log((1.0f64 - f as f64) as f32)));
        }
        heap.into_sorted()
    }
}

impl Loss {
    pub(crate) fn binary() -> Loss {
        let table = (0..=SIGMOID_TABLE_SIZE)
            .map(|i| {
                let x = (i as f32 * 2.0 * MAX_SIGMOID) / SIGMOID_TABLE_SIZE as f32 - MAX_SIGMOID;
                (1.0f64 / (1.0f64 + (-x as f64).exp())) as f32
            })
            .collect();
        Loss::Binary(table)
    }

    /// `Loss::predict`: the `k` best labels with their log-probabilities,
    /// best first.
    pub(crate) fn predict(
        &self,
        k: usize,
        threshold: f32,
        hidden: &[f32],
        wo: &Matrix,
        nlabels: usize,
    ) -> Vec<Scored> {
        let output: Vec<f32> = match self {
            Loss::Hs(tree) => return tree.predict(k, threshold, hidden, wo),
            Loss::Softmax => {
                let mut out: Vec<f32> = (0..nlabels).map(|i| wo.dot_row(hidden, i)).collect();
                let max = out
                    .iter()
                    .fold(out.first().copied().unwrap_or(0.0), |m, &v| {
                        if v > m {
                            v
                        } else {
                            m
                        }
                    });
                let mut z = 0.0f32;
                for v in &mut out {
                    *v = (*v - max).exp();
                    z += *v;
                }
                for v in &mut out {
                    *v /= z;
                }
                out
            }
            Loss::Binary(table) => (0..nlabels)
                .map(|i| sigmoid(table, wo.dot_row(hidden, i)))
                .collect(),
        };
        // findKBest
        let mut heap = TopK::new(k);
        for (i, &p) in output.iter().enumerate() {
            if p < threshold {
                continue;
            }
            let s = std_log(p);
            if heap.is_full() && s < heap.min() {
                continue;
            }
            heap.push((s, i));
        }
        heap.into_sorted()
    }
}

/// `Loss::sigmoid`: the table lookup.
fn sigmoid(table: &[f32], x: f32) -> f32 {
    if x < -MAX_SIGMOID {
        0.0
    } else if x > MAX_SIGMOID {
        1.0
    } else {
        let i = ((x + MAX_SIGMOID) * SIGMOID_TABLE_SIZE as f32 / MAX_SIGMOID / 2.0) as usize;
        table.get(i).copied().unwrap_or(f32::NAN)
    }
}

/// fastText's `Predictions` heap: a `std::vector` driven by libstdc++'s
/// `push_heap`/`pop_heap`/`sort_heap` with `comparePairs` (`l.first >
/// r.first`, a min-heap on the score). Replicated operation for operation,
/// so that ties between equal scores (e.g. every label at the `1e-5` floor)
/// are broken exactly as fastText breaks them.
struct TopK {
    k: usize,
    items: Vec<Scored>,
}

/// `comparePairs`.
fn comp(l: &Scored, r: &Scored) -> bool {
    l.0 > r.0
}

/// libstdc++ `__push_heap`.
fn push_hole(v: &mut [Scored], mut hole: usize, top: usize, value: Scored) {
    while hole > top {
        let parent = (hole - 1) / 2;
        if !comp(&v[parent], &value) {
            break;
        }
        v[hole] = v[parent];
        hole = parent;
    }
    v[hole] = value;
}

/// libstdc++ `__adjust_heap` starting at the root.
fn adjust(v: &mut [Scored], len: usize, value: Scored) {
    let top = 0;
    let mut hole = 0;
    let mut child = 0;
    while child < (len.saturating_sub(1)) / 2 {
        child = 2 * (child + 1);
        if comp(&v[child], &v[child - 1]) {
            child -= 1;
        }
        v[hole] = v[child];
        hole = child;
    }
    if len % 2 == 0 && len >= 2 && child == (len - 2) / 2 {
        child = 2 * (child + 1);
        v[hole] = v[child - 1];
        hole = child - 1;
    }
    push_hole(v, hole, top, value);
}

/// libstdc++ `pop_heap` over `v[..len]`: moves the front to `v[len - 1]`.
fn pop(v: &mut [Scored], len: usize) {
    if len > 1 {
        let last = len - 1;
        let value = v[last];
        v[last] = v[0];
        adjust(v, last, value);
    }
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            items: Vec::with_capacity(k.min(1024) + 1),
        }
    }

    fn is_full(&self) -> bool {
        self.items.len() == self.k
    }

    /// `heap.front().first`: the worst kept score.
    fn min(&self) -> f32 {
        self.items.first().map_or(f32::INFINITY, |s| s.0)
    }

    /// `push_back` + `push_heap`, then `pop_heap` + `pop_back` past `k`.
    fn push(&mut self, item: Scored) {
        self.items.push(item);
        let n = self.items.len();
        push_hole(&mut self.items, n - 1, 0, item);
        if n > self.k {
            pop(&mut self.items, n);
            self.items.pop();
        }
    }

    /// `sort_heap`: best first.
    fn into_sorted(mut self) -> Vec<Scored> {
        let mut len = self.items.len();
        while len > 1 {
            pop(&mut self.items, len);
            len -= 1;
        }
        self.items
    }
}
