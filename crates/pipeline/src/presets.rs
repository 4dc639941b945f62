//! Named presets shipped with refinery (`presets/*.toml` in the repository).

use crate::{ConfigError, PipelineConfig};

/// A named pipeline preset.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    pub name: &'static str,
    /// The preset's TOML source, embedded at build time.
    pub toml: &'static str,
}

/// Every preset, in display order.
pub const PRESETS: &[Preset] = &[Preset {
    name: "default",
    toml: include_str!("../../../presets/default.toml"),
}];

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

    #[test]
    fn every_preset_parses_validates_and_builds() {
        for p in PRESETS {
            let mut cfg = p.config().unwrap();
            assert!(!cfg.description.is_empty(), "{} has no description", p.name);
            cfg.input.paths = vec!["x".into()];
            cfg.output.path = Some("y".into());
            let pipeline = cfg.validate(p.name).unwrap();
            let stages = pipeline.build_stages().unwrap();
            assert_eq!(stages.len(), pipeline.config.stages.len());
        }
    }

    #[test]
    fn default_preset_has_the_foundation_stages_in_order() {
        let cfg = get("default").unwrap().config().unwrap();
        let names: Vec<_> = cfg.stages.iter().map(|s| s.type_name()).collect();
        assert_eq!(names, ["extract", "length_filter", "exact_dedup", "langid"]);
    }
}
