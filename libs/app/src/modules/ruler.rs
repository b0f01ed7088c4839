//! The ruler module: a placeholder; the ruler plugs in here.
//!
//! To add it: give `ModuleName::Ruler` its dependencies in `deps`
//! (`Distributor` to write recording-rule results through the same
//! `Distributor` object — built with the in-process ingester when one runs
//! here, without it otherwise —, `Querier` to read, and a module for the
//! ruler's own ring), build the ruler here from `ctx.distributor()` and
//! `ctx.querier()` (neither needs `PushApi` or `QueryApi`, so the ruler role
//! serves no push or query API), add its routes and links with
//! `ctx.add_routes` / `ctx.add_link`, its background work to `ctx.tasks`
//! (stopping on `ctx.shutdown`), and return a `Module` whose `stop_intake`
//! stops evaluating (it runs before the ingester's and the distributor's in
//! the one-process mode, so the last results still reach the final flush).
//! Then add `ModuleName::Ruler` to `Role::All`'s targets.

use super::{Context, Module, Nothing};

pub async fn init(_ctx: &mut Context) -> anyhow::Result<Box<dyn Module>> {
    Ok(Box::new(Nothing))
}
