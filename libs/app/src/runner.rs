//! The runner: initialises the modules a role needs in dependency order,
//! serves until SIGTERM or a scale-down, and stops them in reverse order
//! (see `crate::modules`).

use anyhow::bail;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::modules::{Context, Module, ModuleName};
use crate::roles::Role;

/// Runs `role` until `terminate` is cancelled (SIGTERM), or a scale-down
/// (`POST /ingester/shutdown`) has flushed and left the ring; after a
/// scale-down a separate ingester keeps answering `/metrics` (and 503 on
/// `/ready`) until `terminate`, so that a supervisor restarting exited
/// processes does not make it join again.
pub async fn run(role: Role, config: Config, terminate: CancellationToken) -> anyhow::Result<()> {
    // Every process serves HTTP (`/metrics`, `/ready`, `/ring`).
    let mut targets = vec![ModuleName::Server];
    targets.extend_from_slice(role.targets());
    let order = init_order(&targets)?;

    let mut ctx = Context::new(role, config, terminate);
    let mut modules: Vec<Box<dyn Module>> = Vec::with_capacity(order.len());
    for name in order {
        modules.push(name.init(&mut ctx).await?);
    }
    for module in &mut modules {
        module.start(&mut ctx).await?;
    }

    ctx.shutdown.cancelled().await;
    tracing::info!("shutting down");
    for module in modules.iter_mut().rev() {
        module.stop_intake(&ctx).await;
    }
    for module in modules.iter_mut().rev() {
        module.stop(&ctx).await;
    }
    for task in std::mem::take(&mut ctx.tasks) {
        task.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// `targets` and every module they need, each after the modules it needs
/// and after the optional ones that are among them; otherwise in the order
/// the targets and dependencies are listed.
pub fn init_order(targets: &[ModuleName]) -> anyhow::Result<Vec<ModuleName>> {
    let mut needed = Vec::new();
    let mut stack = targets.to_vec();
    while let Some(module) = stack.pop() {
        if !needed.contains(&module) {
            needed.push(module);
            stack.extend_from_slice(module.deps());
        }
    }
    let mut order = Vec::with_capacity(needed.len());
    let mut visiting = Vec::new();
    for &target in targets {
        visit(target, &needed, &mut visiting, &mut order)?;
    }
    Ok(order)
}

fn visit(
    module: ModuleName,
    needed: &[ModuleName],
    visiting: &mut Vec<ModuleName>,
    order: &mut Vec<ModuleName>,
) -> anyhow::Result<()> {
    if order.contains(&module) {
        return Ok(());
    }
    if visiting.contains(&module) {
        bail!("modules depend on each other in a cycle: {visiting:?} → {module:?}");
    }
    visiting.push(module);
    let optional = module.optional_deps().iter().filter(|m| needed.contains(m));
    for &dep in module.deps().iter().chain(optional) {
        visit(dep, needed, visiting, order)?;
    }
    visiting.pop();
    order.push(module);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ModuleName::*;

    const ROLES: [Role; 5] = [
        Role::All,
        Role::Distributor,
        Role::Ingester,
        Role::Querier,
        Role::Ruler,
    ];

    fn order(role: Role) -> Vec<ModuleName> {
        let mut targets = vec![Server];
        targets.extend_from_slice(role.targets());
        init_order(&targets).unwrap()
    }

    #[test]
    fn every_role_runs_its_modules_in_dependency_order() {
        assert_eq!(
            order(Role::All),
            [
                Overrides,
                Ring,
                Server,
                Store,
                Ingester,
                Distributor,
                PushApi,
                Querier,
                QueryApi,
                Ruler
            ]
        );
        assert_eq!(
            order(Role::Distributor),
            [Overrides, Ring, Server, Distributor, PushApi]
        );
        assert_eq!(
            order(Role::Ingester),
            [Overrides, Ring, Server, Store, Ingester]
        );
        assert_eq!(
            order(Role::Querier),
            [Overrides, Ring, Server, Store, Querier, QueryApi]
        );
        assert_eq!(
            order(Role::Ruler),
            [Overrides, Ring, Server, Distributor, Store, Querier, Ruler]
        );
    }

    /// Every module comes after what it needs, and after what it uses
    /// when that runs too, whatever the targets and their order.
    #[test]
    fn modules_come_after_their_dependencies() {
        let mut target_sets: Vec<Vec<ModuleName>> = ROLES
            .iter()
            .map(|r| {
                let mut t = vec![Server];
                t.extend_from_slice(r.targets());
                t
            })
            .collect();
        for a in ModuleName::ALL {
            target_sets.push(vec![a]);
            for b in ModuleName::ALL {
                target_sets.push(vec![a, b]);
            }
        }
        for targets in target_sets {
            let order = init_order(&targets).unwrap();
            for (i, module) in order.iter().enumerate() {
                for dep in module.deps() {
                    let at = order.iter().position(|m| m == dep);
                    assert!(
                        at.is_some_and(|at| at < i),
                        "{targets:?}: {module:?} at {i} needs {dep:?} before it: {order:?}"
                    );
                }
                for dep in module.optional_deps() {
                    if let Some(at) = order.iter().position(|m| m == dep) {
                        assert!(at < i, "{targets:?}: {dep:?} after {module:?}: {order:?}");
                    }
                }
            }
            for target in &targets {
                assert!(order.contains(target), "{targets:?}: {order:?}");
            }
            let mut dedup = order.clone();
            dedup.sort_by_key(|m| m.name());
            dedup.dedup();
            assert_eq!(dedup.len(), order.len(), "{order:?}");
        }
    }

    #[test]
    fn the_in_process_ingester_is_used_only_when_it_runs_here() {
        // Listed before it, the distributor still starts after the ingester.
        let order = init_order(&[PushApi, Ingester]).unwrap();
        let at = |m| order.iter().position(|x| *x == m).unwrap();
        assert!(at(Ingester) < at(Distributor), "{order:?}");
        // Without one, the distributor does not make an ingester run.
        assert!(!init_order(&[Distributor]).unwrap().contains(&Ingester));
    }

    /// What the ruler will need: the distributor and the querier as
    /// objects, without serving pushes or queries.
    #[test]
    fn distributor_and_querier_can_run_without_their_apis() {
        let order = init_order(&[Server, Distributor, Querier]).unwrap();
        assert_eq!(
            order,
            [Overrides, Ring, Server, Distributor, Store, Querier]
        );
    }
}
