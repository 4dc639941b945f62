//! Which teacher layer each student layer learns from.
//!
//! Layers are numbered from 1 (layer `m` is the output of the m-th block, HF
//! `hidden_states[m]`; `0` is the embeddings, which the embedding loss handles). For a student
//! of `M` layers and a teacher of `N`:
//!
//! - `uniform`: `g(m) = round(m · N / M)` (TinyBERT's `g(m) = k·m` with `k = N / M`);
//! - `last`: `g(m) = N − M + m` (the top `M` teacher layers, "last-k");
//! - an explicit list `[g(1), …, g(M')]` (`M' ≤ M`: the lowest `M'` student layers).

use serde::{Deserialize, Serialize};

/// A layer map, as written in the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LayerMap {
    /// `"uniform"` or `"last"`.
    Named(String),
    /// `g(1), g(2), …` (1-based teacher layers).
    Explicit(Vec<usize>),
}

impl Default for LayerMap {
    fn default() -> Self {
        LayerMap::Named("uniform".into())
    }
}

/// `(student layer, teacher layer)`, both 1-based.
pub type LayerPair = (usize, usize);

impl LayerMap {
    /// The pairs for a student of `student` layers and a teacher of `teacher` layers. Errors
    /// (as plain text, to be wrapped with the two models' names) when the map points past
    /// either model's depth.
    pub fn pairs(&self, student: usize, teacher: usize) -> Result<Vec<LayerPair>, String> {
        if student == 0 || teacher == 0 {
            return Err(format!(
                "a layer map needs layers on both sides (student {student}, teacher {teacher})"
            ));
        }
        match self {
            LayerMap::Named(n) if n == "uniform" => Ok((1..=student)
                .map(|m| {
                    let g = ((m * teacher) as f64 / student as f64).round() as usize;
                    (m, g.clamp(1, teacher))
                })
                .collect()),
            LayerMap::Named(n) if n == "last" => {
                if student > teacher {
                    return Err(format!(
                        "map \"last\" pairs the student's {student} layers with the teacher's \
                         top {student}, but the teacher has only {teacher}"
                    ));
                }
                Ok((1..=student).map(|m| (m, teacher - student + m)).collect())
            }
            LayerMap::Named(n) => Err(format!(
                "map {n:?}: expected \"uniform\", \"last\" or a list of teacher layers"
            )),
            LayerMap::Explicit(list) => {
                if list.is_empty() {
                    return Err("an explicit layer map needs at least one layer".into());
                }
                if list.len() > student {
                    return Err(format!(
                        "the layer map lists {} layers but the student has only {student}",
                        list.len()
                    ));
                }
                if let Some(&g) = list.iter().find(|&&g| g == 0 || g > teacher) {
                    return Err(format!(
                        "the layer map points at teacher layer {g}, but the teacher has layers \
                         1..={teacher}"
                    ));
                }
                Ok(list.iter().enumerate().map(|(i, &g)| (i + 1, g)).collect())
            }
        }
    }
}

/// The teacher layers (0-based block indices) a student of `student` layers is initialised
/// from by default: evenly spaced from the bottom (`⌊i · N / M⌋`), i.e. every other layer
/// for `M = N / 2` (DistilBERT).
pub fn default_init_layers(student: usize, teacher: usize) -> Vec<usize> {
    (0..student).map(|i| i * teacher / student.max(1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_last_and_explicit_maps() {
        let uniform = LayerMap::default();
        assert_eq!(uniform.pairs(3, 6).unwrap(), [(1, 2), (2, 4), (3, 6)]);
        assert_eq!(
            uniform.pairs(4, 12).unwrap(),
            [(1, 3), (2, 6), (3, 9), (4, 12)]
        );
        assert_eq!(uniform.pairs(2, 2).unwrap(), [(1, 1), (2, 2)]);
        let last = LayerMap::Named("last".into());
        assert_eq!(last.pairs(2, 6).unwrap(), [(1, 5), (2, 6)]);
        let e = last.pairs(4, 2).unwrap_err();
        assert!(e.contains("only 2"), "{e}");
        let explicit = LayerMap::Explicit(vec![1, 3]);
        assert_eq!(explicit.pairs(3, 6).unwrap(), [(1, 1), (2, 3)]);
        let e = LayerMap::Explicit(vec![2, 7]).pairs(3, 6).unwrap_err();
        assert!(e.contains("teacher layer 7") && e.contains("1..=6"), "{e}");
        let e = LayerMap::Explicit(vec![1, 2, 3, 4])
            .pairs(3, 6)
            .unwrap_err();
        assert!(e.contains("student has only 3"), "{e}");
        assert!(LayerMap::Named("middle".into()).pairs(3, 6).is_err());
    }

    #[test]
    fn default_init_takes_every_other_layer() {
        assert_eq!(default_init_layers(3, 6), [0, 2, 4]);
        assert_eq!(default_init_layers(6, 12), [0, 2, 4, 6, 8, 10]);
        assert_eq!(default_init_layers(4, 6), [0, 1, 3, 4]);
        assert_eq!(default_init_layers(2, 4), [0, 2]);
    }
}
