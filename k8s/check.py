"""What the API schemas do not check (run by `make k8s-validate`).

Every container of a Deployment, StatefulSet or DaemonSet has cpu and memory
requests and limits, a readiness probe and a liveness probe (init
containers: resources only); every Deployment and StatefulSet has a
PodDisruptionBudget selecting its pods.

    python k8s/check.py k8s/*.yaml
"""

import sys

import yaml

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


def main(paths):
    docs = []
    for path in paths:
        with open(path) as f:
            docs += [(path, d) for d in yaml.safe_load_all(f) if d]
    pdb_selectors = [
        d["spec"].get("selector", {}).get("matchLabels", {})
        for _, d in docs
        if d.get("kind") == "PodDisruptionBudget"
    ]
    errors = []
    for path, d in docs:
        if d.get("kind") not in WORKLOADS:
            continue
        name = f"{path}: {d['kind']}/{d['metadata']['name']}"
        template = d["spec"]["template"]
        pod = template["spec"]
        for init, containers in ((False, pod["containers"]), (True, pod.get("initContainers", []))):
            for c in containers:
                where = f"{name} container {c['name']}"
                res = c.get("resources", {})
                for kind in ("requests", "limits"):
                    for r in ("cpu", "memory"):
                        if r not in res.get(kind, {}):
                            errors.append(f"{where}: no resources.{kind}.{r}")
                if not init:
                    for probe in ("readinessProbe", "livenessProbe"):
                        if probe not in c:
                            errors.append(f"{where}: no {probe}")
        labels = template["metadata"].get("labels", {})
        if d["kind"] != "DaemonSet" and not any(
            sel and all(labels.get(k) == v for k, v in sel.items()) for sel in pdb_selectors
        ):
            errors.append(f"{name}: no PodDisruptionBudget selects its pods")
    for e in errors:
        print(e, file=sys.stderr)
    workloads = sum(d.get("kind") in WORKLOADS for _, d in docs)
    print(f"k8s/check.py: {workloads} workloads, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
