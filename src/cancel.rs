//! Stopping inside a long training step: a step of an LSTM over a thousand time steps can
//! take a minute, and SIGTERM must not wait for it.
//!
//! The training loop runs each step [`within`] the run's stop flag; the recurrent models
//! call [`checkpoint`] once per time step of their forward and backward passes. When the
//! flag is set there, the step is abandoned by unwinding to [`within`] (with
//! `resume_unwind`, so no panic hook runs and nothing is printed). The checkpoints sit in
//! passes that only read the weights, so an abandoned step leaves the network exactly as
//! the last finished step left it. Outside [`within`] a checkpoint does nothing. A leaf
//! module: it knows nothing of the lab.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    /// The stop flag of the step running on this thread, if any.
    static FLAG: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// The unwind payload of an abandoned step.
struct Abandoned;

/// Runs `step` with `flag` as the stop flag its checkpoints read: `Some` of its result, or
/// `None` when a checkpoint found the flag set and the step was abandoned. Any other panic
/// goes on unwinding.
pub fn within<R>(flag: &Arc<AtomicBool>, step: impl FnOnce() -> R) -> Option<R> {
    let previous = FLAG.with(|f| f.replace(Some(Arc::clone(flag))));
    let result = catch_unwind(AssertUnwindSafe(step));
    FLAG.with(|f| *f.borrow_mut() = previous);
    match result {
        Ok(r) => Some(r),
        Err(payload) if payload.is::<Abandoned>() => None,
        Err(payload) => resume_unwind(payload),
    }
}

/// Abandons the step running on this thread if its stop flag is set; otherwise, and
/// outside [`within`], returns at once.
#[inline]
pub fn checkpoint() {
    let stop = FLAG.with(|f| {
        f.borrow()
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Relaxed))
    });
    if stop {
        resume_unwind(Box::new(Abandoned));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_flag_abandons_at_the_next_checkpoint_and_only_within() {
        let flag = Arc::new(AtomicBool::new(false));
        let mut reached = 0;
        assert_eq!(
            within(&flag, || {
                for i in 0..10 {
                    checkpoint();
                    reached = i;
                    if i == 3 {
                        flag.store(true, Ordering::SeqCst);
                    }
                }
                "done"
            }),
            None
        );
        assert_eq!(
            reached, 3,
            "stopped at the checkpoint after the flag was set"
        );
        // Outside `within` the set flag is not this thread's: checkpoints pass.
        checkpoint();
        flag.store(false, Ordering::SeqCst);
        assert_eq!(within(&flag, || 7), Some(7));
        // Other panics are not swallowed.
        let other = catch_unwind(|| within(&flag, || panic!("boom")));
        assert!(other.is_err());
    }
}
