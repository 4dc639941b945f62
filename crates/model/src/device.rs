//! Device selection by name, for command lines and config files.
//!
//! | name | device | cargo feature |
//! |---|---|---|
//! | `cpu`, `flex` | [`Device::flex`], burn's pure-Rust CPU backend | default |
//! | `cuda`, `cuda:N` | [`Device::cuda`] (GPU `N`, default 0), kernels compiled at run time by NVRTC | `cuda` |
//! | `tch`, `libtorch`, `tch:cpu` | `Device::libtorch()` (libtorch on the CPU) | `tch` |
//! | `tch:cuda`, `tch:cuda:N` (also `libtorch:…`) | `Device::libtorch_cuda(N)` | `tch` |
//!
//! A name whose backend is not compiled into this binary is an error that names the feature
//! to rebuild with ([`DeviceError::NotCompiled`]), never a silent fallback to the CPU.
//! The returned device is an inference device; call `.autodiff()` on it for training.
//!
//! ```
//! use refinery_model::device::{parse_device, DeviceError};
//!
//! assert!(parse_device("cpu").is_ok());
//! assert!(matches!(parse_device("gpu"), Err(DeviceError::Unknown(_))));
//! ```

use burn::tensor::Device;
use thiserror::Error;

/// Why a device name could not be turned into a device.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeviceError {
    #[error(
        "unknown device {0:?}: expected cpu, flex, cuda[:N], tch, tch:cpu or tch:cuda[:N] \
         (libtorch is an alias of tch)"
    )]
    Unknown(String),
    #[error(
        "device {name:?} needs the `{feature}` cargo feature, which this binary was built \
         without (rebuild with `--features {feature}`)"
    )]
    NotCompiled { name: String, feature: &'static str },
    #[error("bad device index in {name:?}: {index:?} is not a non-negative integer")]
    BadIndex { name: String, index: String },
}

/// The backend families a device name can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// burn flex (pure-Rust CPU).
    Flex,
    /// burn's CubeCL CUDA backend, with the GPU index.
    Cuda(usize),
    /// libtorch on the CPU (burn-tch).
    TchCpu,
    /// libtorch on a CUDA GPU (burn-tch), with the GPU index.
    TchCuda(usize),
}

impl BackendKind {
    /// Parses a device name (case-insensitive, surrounding whitespace ignored) without
    /// checking which backends this build has.
    pub fn parse(name: &str) -> Result<Self, DeviceError> {
        let lower = name.trim().to_ascii_lowercase();
        let index = |s: &str| -> Result<usize, DeviceError> {
            s.parse().map_err(|_| DeviceError::BadIndex {
                name: name.to_string(),
                index: s.to_string(),
            })
        };
        let parts: Vec<&str> = lower.split(':').collect();
        match parts.as_slice() {
            ["cpu"] | ["flex"] => Ok(Self::Flex),
            ["cuda"] => Ok(Self::Cuda(0)),
            ["cuda", i] => Ok(Self::Cuda(index(i)?)),
            ["tch" | "libtorch"] | ["tch" | "libtorch", "cpu"] => Ok(Self::TchCpu),
            ["tch" | "libtorch", "cuda"] => Ok(Self::TchCuda(0)),
            ["tch" | "libtorch", "cuda", i] => Ok(Self::TchCuda(index(i)?)),
            _ => Err(DeviceError::Unknown(name.to_string())),
        }
    }

    /// The cargo feature this backend needs (`None`: always compiled in).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Self::Flex => None,
            Self::Cuda(_) => Some("cuda"),
            Self::TchCpu | Self::TchCuda(_) => Some("tch"),
        }
    }

    /// Whether this binary was built with the backend.
    pub fn is_compiled(self) -> bool {
        match self {
            Self::Flex => true,
            Self::Cuda(_) => cfg!(feature = "cuda"),
            Self::TchCpu | Self::TchCuda(_) => cfg!(feature = "tch"),
        }
    }
}

/// Device names this binary can open (for `--help` texts and error messages).
pub fn compiled_device_names() -> Vec<&'static str> {
    let mut names = vec!["cpu", "flex"];
    if cfg!(feature = "cuda") {
        names.extend(["cuda", "cuda:N"]);
    }
    if cfg!(feature = "tch") {
        names.extend(["tch", "tch:cpu", "tch:cuda", "tch:cuda:N"]);
    }
    names
}

/// Opens the device a name selects (see the module docs for the names).
pub fn parse_device(name: &str) -> Result<Device, DeviceError> {
    let kind = BackendKind::parse(name)?;
    if let (false, Some(feature)) = (kind.is_compiled(), kind.feature()) {
        return Err(DeviceError::NotCompiled {
            name: name.trim().to_string(),
            feature,
        });
    }
    Ok(open(kind))
}

#[allow(unreachable_code, unused_variables)] // arms of backends this build lacks
fn open(kind: BackendKind) -> Device {
    match kind {
        BackendKind::Flex => Device::flex(),
        BackendKind::Cuda(i) => {
            #[cfg(feature = "cuda")]
            return Device::cuda(i);
            // Not reachable: parse_device checked is_compiled().
            Device::flex()
        }
        BackendKind::TchCpu => {
            // burn marks burn-tch deprecated (in favour of CubeCL backends); it is still the
            // libtorch path the issue asks for.
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            return Device::libtorch();
            Device::flex()
        }
        BackendKind::TchCuda(i) => {
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            return Device::libtorch_cuda(i);
            Device::flex()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_to_backends() {
        assert_eq!(BackendKind::parse("cpu"), Ok(BackendKind::Flex));
        assert_eq!(BackendKind::parse(" FLEX "), Ok(BackendKind::Flex));
        assert_eq!(BackendKind::parse("cuda"), Ok(BackendKind::Cuda(0)));
        assert_eq!(BackendKind::parse("cuda:3"), Ok(BackendKind::Cuda(3)));
        assert_eq!(BackendKind::parse("tch"), Ok(BackendKind::TchCpu));
        assert_eq!(BackendKind::parse("libtorch:cpu"), Ok(BackendKind::TchCpu));
        assert_eq!(BackendKind::parse("tch:cuda"), Ok(BackendKind::TchCuda(0)));
        assert_eq!(
            BackendKind::parse("libtorch:cuda:1"),
            Ok(BackendKind::TchCuda(1))
        );
    }

    #[test]
    fn bad_names_are_errors() {
        assert!(matches!(
            BackendKind::parse("gpu"),
            Err(DeviceError::Unknown(_))
        ));
        assert!(matches!(
            BackendKind::parse("cuda:x"),
            Err(DeviceError::BadIndex { .. })
        ));
        assert!(matches!(
            BackendKind::parse("cuda:-1"),
            Err(DeviceError::BadIndex { .. })
        ));
        assert!(matches!(
            BackendKind::parse("cuda:0:1"),
            Err(DeviceError::Unknown(_))
        ));
        assert!(matches!(
            BackendKind::parse(""),
            Err(DeviceError::Unknown(_))
        ));
    }

    #[test]
    fn cpu_opens_flex() {
        let device = parse_device("cpu").unwrap();
        assert_eq!(device, Device::flex());
    }

    #[test]
    fn backends_not_compiled_in_name_their_feature() {
        for (name, feature, compiled) in [
            ("cuda:0", "cuda", cfg!(feature = "cuda")),
            ("tch", "tch", cfg!(feature = "tch")),
        ] {
            if compiled {
                continue; // opening it would need the hardware / libtorch at test time
            }
            let err = parse_device(name).unwrap_err();
            assert_eq!(
                err,
                DeviceError::NotCompiled {
                    name: name.to_string(),
                    feature
                }
            );
            assert!(err.to_string().contains(&format!("--features {feature}")));
        }
    }
}
