//! Named presets shipped with refinery (`presets/*.toml` in the repository).

#[cfg(test)]
use crate::StageConfig;
use crate::{ConfigError, PipelineConfig};

/// A named pipeline preset.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub name: &'static str,
    /// The preset's TOML source, embedded at build time.
    pub toml: &'static str,
}

/// Every preset, in display order.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "default",
        toml: include_str!("../../../presets/default.toml"),
    },
    Preset {
        name: "refinedweb",
        toml: include_str!("../../../presets/refinedweb.toml"),
    },
    Preset {
        name: "fineweb",
        toml: include_str!("../../../presets/fineweb.toml"),
    },
    Preset {
        name: "c4",
        toml: include_str!("../../../presets/c4.toml"),
    },
    Preset {
        name: "gopher",
        toml: include_str!("../../../presets/gopher.toml"),
    },
];

/// Looks a preset up by name.
pub fn get(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

impl Preset {
    /// Parses the preset (validated by this crate's tests).
    pub fn config(&self) -> Result<PipelineConfig, ConfigError> {
        PipelineConfig::from_toml(self.toml, &format!("preset `{}`", self.name))
    }
}

/// The names, for error messages.
pub fn names() -> Vec<&'static str> {
    PRESETS.iter().map(|p| p.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// lid.176.ftz from ../shared, for the presets that name it.
    fn model_dir() -> Option<std::path::PathBuf> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/models/lid");
        p.join("lid.176.ftz").exists().then_some(p)
    }

    fn uses_model(cfg: &PipelineConfig) -> bool {
        cfg.stages.iter().any(|s| match s {
            StageConfig::Langid(c) => c.model.is_some(),
            StageConfig::LangFilter(c) => c.model.is_some(),
            _ => false,
        })
    }

    #[test]
    fn every_preset_parses_validates_and_builds() {
        let models = model_dir();
        for p in PRESETS {
            let mut cfg = p.config().unwrap();
            assert!(!cfg.description.is_empty(), "{} has no description", p.name);
            cfg.input.paths = vec!["x".into()];
            cfg.output.path = Some("y".into());
            if uses_model(&cfg) {
                let Some(dir) = &models else {
                    eprintln!(
                        "skipping: ../shared not found; preset {} parsed but not built",
                        p.name
                    );
                    continue;
                };
                for s in cfg.stages.iter_mut() {
                    match s {
                        StageConfig::Langid(c) => c.model = Some(dir.join("lid.176.ftz")),
                        StageConfig::LangFilter(c) => c.model = Some(dir.join("lid.176.ftz")),
                        _ => {}
                    }
                }
            }
            let pipeline = cfg.validate(p.name).unwrap();
            let stages = pipeline.build_stages().unwrap();
            assert_eq!(stages.len(), pipeline.config.stages.len());
        }
    }

    #[test]
    fn paper_presets_carry_the_papers_thresholds() {
        let cfg = |n: &str| get(n).unwrap().config().unwrap();
        let lang = |c: &PipelineConfig| {
            c.stages.iter().find_map(|s| match s {
                StageConfig::LangFilter(f) => Some((f.languages.clone(), f.min_score)),
                _ => None,
            })
        };
        assert_eq!(
            lang(&cfg("refinedweb")),
            Some((vec!["en".to_string()], 0.65))
        );
        assert_eq!(lang(&cfg("fineweb")), Some((vec!["en".to_string()], 0.65)));
        // C4 used langdetect >= 0.99; lid.176 stands in at 0.65 (see presets/c4.toml).
        assert_eq!(lang(&cfg("c4")), Some((vec!["en".to_string()], 0.65)));
        let names = |c: &PipelineConfig| c.stages.iter().map(|s| s.type_name()).collect::<Vec<_>>();
        assert_eq!(
            names(&cfg("refinedweb")),
            [
                "url_filter",
                "extract",
                "langid",
                "lang_filter",
                "gopher_repetition",
                "gopher_quality",
                "refinedweb_lines"
            ]
        );
        assert_eq!(
            names(&cfg("fineweb")),
            [
                "url_filter",
                "extract",
                "langid",
                "lang_filter",
                "gopher_repetition",
                "gopher_quality",
                "c4",
                "fineweb_quality",
                "pii"
            ]
        );
        let fw = cfg("fineweb");
        assert!(fw
            .stages
            .iter()
            .any(|s| matches!(s, StageConfig::C4(c) if !c.filter_no_terminal_punct)));
        assert!(fw
            .stages
            .iter()
            .any(|s| matches!(s, StageConfig::Pii(p) if !p.phones && p.emails && p.ips)));
        let rw = cfg("refinedweb");
        assert!(rw
            .stages
            .iter()
            .any(|s| matches!(s, StageConfig::Extract(e) if e.strip_urls && e.max_newlines == 2)));
    }

    #[test]
    fn default_preset_has_the_foundation_stages_in_order() {
        let cfg = get("default").unwrap().config().unwrap();
        let names: Vec<_> = cfg.stages.iter().map(|s| s.type_name()).collect();
        assert_eq!(names, ["extract", "length_filter", "exact_dedup", "langid"]);
    }
}
