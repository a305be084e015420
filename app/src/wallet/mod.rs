//! The household wallet beyond its identity: paired devices, requests, grants, history.
//!
//! ```text
//!  pages/home (view) ──► request   (link ─► card + signed request ─► Verdict; pure)
//!                    ──► household (pairing, consent log read/write, receipts; over api::tangle)
//!                    ──► overview  (devices, grants with state, timeline; pure)
//!                    ──► book      (paired devices + log heads in storage; log keys sealed)
//! ```
//!
//! Keys never leave the browser: the node sees proof-of-work messages whose payloads are the
//! protocol's ciphertexts and signatures; the wallet secret, owner keys, log keys and grant
//! keys stay in this tab (the log keys also sealed at rest, see [`book`]).

pub mod book;
pub mod household;
pub mod overview;
pub mod request;
pub mod time;

use getrandom::SysRng;
use rand_core::UnwrapErr;

/// The browser's CSPRNG (`crypto.getRandomValues`) in the shape `protocol` takes.
pub type Rng = UnwrapErr<SysRng>;

/// A handle on the browser's CSPRNG.
pub fn rng() -> Rng {
    UnwrapErr(SysRng)
}
