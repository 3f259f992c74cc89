//! Why a run could not train, typed: each is recorded as a `failed` run with its message, and
//! the CLI tells bad input (a device this build lacks) from a failure of the run itself.

/// What stopped a run from training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The config asks for a device this build was not compiled with.
    #[error(
        "device '{device}' is not compiled in: rebuild with `cargo build --release --features {device}`"
    )]
    DeviceMissing { device: &'static str },
    /// The data set could not be built or read.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// The data does not have the shape the model reads (a grid net on a non-square image).
    #[error("{what}")]
    Shape { what: String },
    /// The backend handed back numbers in a type the lab did not ask for.
    #[error("reading {what} back from the backend: {message}")]
    Readback { what: &'static str, message: String },
}

impl TrainError {
    /// A readback failure of `what`, from Burn's error.
    pub(crate) fn readback<E: std::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> Self {
        move |e| TrainError::Readback {
            what,
            message: format!("{e:?}"),
        }
    }

    /// Whether the failure lies in the input (the config), not in the run.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            TrainError::DeviceMissing { .. } | TrainError::Shape { .. }
        )
    }
}
