//! The stage registry: stage config → checked stage → per-task [`Stage`].
//!
//! Adding a stage kind means one `StageConfig` variant and one arm in
//! [`check`] and [`instantiate`].

use refinery_corpus::Stage;

use crate::StageConfig;

/// A stage config that passed validation. Instances are built per task from
/// it (stages hold per-task state such as a dedup set).
#[derive(Clone, Debug)]
pub struct CheckedStage {
    /// Name in stats: the `type`, with `#2`, `#3` … for repeats.
    pub name: String,
    pub config: StageConfig,
}

/// Validates one stage config. The error is `(field, message)`.
pub fn check(cfg: &StageConfig) -> Result<CheckedStage, (String, String)> {
    instantiate(cfg, cfg.type_name())?;
    Ok(CheckedStage {
        name: cfg.type_name().to_string(),
        config: cfg.clone(),
    })
}

/// Builds a fresh set of stages, numbering repeated stage types.
pub fn build(stages: &[CheckedStage]) -> Result<Vec<Stage>, String> {
    let mut out = Vec::with_capacity(stages.len());
    for (i, s) in stages.iter().enumerate() {
        let repeats = stages[..i].iter().filter(|p| p.name == s.name).count();
        let name = if repeats == 0 {
            s.name.clone()
        } else {
            format!("{}#{}", s.name, repeats + 1)
        };
        out.push(
            instantiate(&s.config, &name).map_err(|(k, m)| format!("stage {name}: {k}: {m}"))?,
        );
    }
    Ok(out)
}

fn instantiate(cfg: &StageConfig, name: &str) -> Result<Stage, (String, String)> {
    Ok(match cfg {
        StageConfig::Extract(o) => {
            Stage::modifier(name, refinery_extract::ExtractStage::new(o.clone()))
        }
        StageConfig::LengthFilter(c) => Stage::filter(
            name,
            c.clone().validate().map_err(|e| (e.field, e.message))?,
        ),
        StageConfig::GopherRepetition(c) => Stage::filter(
            name,
            c.clone().validate().map_err(|e| (e.field, e.message))?,
        ),
        StageConfig::GopherQuality(c) => Stage::filter(
            name,
            c.clone().validate().map_err(|e| (e.field, e.message))?,
        ),
        StageConfig::C4(c) => Stage::modifier(
            name,
            c.clone().validate().map_err(|e| (e.field, e.message))?,
        ),
        StageConfig::FinewebQuality(c) => Stage::filter(
            name,
            c.clone().validate().map_err(|e| (e.field, e.message))?,
        ),
        StageConfig::RefinedwebLines(c) => Stage::modifier(
            name,
            c.clone().validate().map_err(|e| (e.field, e.message))?,
        ),
        StageConfig::ExactDedup(c) => c.clone().build().into_stage(name),
        StageConfig::Langid(c) => Stage::annotator(
            name,
            c.clone().validate().map_err(|e| (e.field, e.message))?,
        ),
        StageConfig::LangFilter(c) => Stage::filter(
            name,
            c.clone().validate().map_err(|e| (e.field, e.message))?,
        ),
        StageConfig::UrlFilter(c) => Stage::filter(
            name,
            c.clone().validate().map_err(|e| (e.field, e.message))?,
        ),
        StageConfig::Pii(c) => Stage::modifier(
            name,
            c.clone().validate().map_err(|e| (e.field, e.message))?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PipelineConfig;

    #[test]
    fn repeated_stage_types_get_numbered_names() {
        let cfg = PipelineConfig::from_toml(
            "[[stages]]\ntype = \"length_filter\"\nmin_chars = 5\n[[stages]]\ntype = \"length_filter\"\nmax_chars = 50\n",
            "t.toml",
        )
        .unwrap();
        let checked: Vec<_> = cfg.stages.iter().map(|s| check(s).unwrap()).collect();
        let stages = build(&checked).unwrap();
        let names: Vec<_> = stages.iter().map(|s| s.name().to_string()).collect();
        assert_eq!(names, ["length_filter", "length_filter#2"]);
    }

    #[test]
    fn invalid_stage_parameters_are_reported_with_their_index_and_field() {
        let mut cfg = PipelineConfig::from_toml(
            "[[stages]]\ntype = \"extract\"\n[[stages]]\ntype = \"length_filter\"\nmin_chars = 50\nmax_chars = 10\n",
            "t.toml",
        )
        .unwrap();
        cfg.input.paths = vec!["x".into()];
        cfg.output.path = Some("y".into());
        let err = cfg.validate("t.toml").unwrap_err().to_string();
        assert!(
            err.starts_with("t.toml: stages[1].") && err.contains("min_chars"),
            "{err}"
        );
    }

    #[test]
    fn unknown_stage_types_and_keys_are_rejected() {
        let err = PipelineConfig::from_toml("[[stages]]\ntype = \"nope\"\n", "t.toml").unwrap_err();
        assert!(
            err.to_string().contains("stages[0]") && err.to_string().contains("nope"),
            "{err}"
        );
        let err =
            PipelineConfig::from_toml("[writer]\ncompresion = \"gzip\"\n", "t.toml").unwrap_err();
        assert!(
            err.to_string().contains("writer") && err.to_string().contains("compresion"),
            "{err}"
        );
    }
}
