//! `--shard K/N` in the pack's stages: this shard's units, with a note when it has none.

use crate::build::BuildRequest;
use crate::output::Shell;
use crate::settings::Options;
use crate::shard::ShardListing;
use crate::units::{Resolved, Unit};

/// The split, and the whole selection's units it was made from.
pub struct Sharded {
    pub listing: Vec<ShardListing>,
    pub whole: Vec<Unit>,
}

/// With `--shard K/N`, the units of this shard, and only their packages count as packed (another
/// shard's artifacts in a shared output directory are not stale); and the whole split.
pub fn shard_units(
    resolved: Resolved,
    options: &Options,
    shell: &Shell,
) -> (Resolved, Option<Sharded>) {
    let Some(shard) = options.shard else {
        return (resolved, None);
    };
    let whole = resolved.units.clone();
    let (units, listing) = crate::units::shard(resolved.units, shard);
    if units.is_empty() {
        let total: usize = listing.iter().map(|s| s.functions.len()).sum();
        shell.note(format!(
            "shard {shard} has no function (none of the selection's {total} went to it): nothing to build; the manifest is empty"
        ));
    }
    let packages = units.iter().map(|u| u.package.clone()).collect();
    let resolved = Resolved {
        units,
        packages,
        ..resolved
    };
    (resolved, Some(Sharded { listing, whole }))
}

/// cargo unifies dependency features across the packages of one invocation, so a shard that
/// named only its own packages could build other bytes than the whole run (a dependency with
/// fewer features). Each of the shard's builds names every package the whole selection builds
/// for that target, while its `--bin`, `--example` and `--lib` still build only the shard's
/// targets: the artifacts are then the same whichever runner builds them.
pub fn unify_features(requests: &mut [BuildRequest], whole: &[Unit]) {
    for request in requests.iter_mut() {
        let arch = request.target.arch;
        request.packages.extend(
            whole
                .iter()
                .filter(|u| !u.bins.is_empty() || !u.cdylibs.is_empty())
                .filter(|u| u.archs.contains(&arch))
                .map(|u| u.package.clone()),
        );
        request.packages.sort();
        request.packages.dedup();
    }
}
